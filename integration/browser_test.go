package integration

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium returns the path of a headless-capable Chromium or fails the test
// saying how to install one: a browser test never skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install it with `apt-get install chromium` (or set CHROMIUM to its path)")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and the extra
// options given.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestBrowserGuestFlow walks the whole flow in a real browser, without
// JavaScript on our pages, for a host and a path tenant, in English and in
// Arabic (right to left), on a phone and a desktop: a deep link, the
// send-code form, the code from the real mail, a wrong code, and the landing
// on the same link with the backend seeing the guest.
func TestBrowserGuestFlow(t *testing.T) {
	for _, tc := range []struct {
		name, lang, origin, deep, wrong string
		width, height                   int64
	}{
		{"en host desktop", "en", contoso, "/docs/Q3%20report.pdf?version=2", "4 tries left", 1280, 800},
		{"ar path phone", "ar", pathSite, "/t/acme/docs/Q3%20report.pdf?version=2", "تبقّت لديك 4 محاولات", 360, 740},
		{"en path phone", "en", pathSite, "/t/acme/docs/a.pdf", "4 tries left", 360, 740},
		{"ar host desktop", "ar", contoso, "/docs/a.pdf", "تبقّت لديك 4 محاولات", 1280, 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, gatewayOptions{})
			ctx := newBrowser(t)
			deep := tc.origin + tc.deep
			verifyButton := chromedp.CSS(`form[action$="verify"] button`)
			must(t, "opening the deep link", chromedp.Do(ctx,
				speak(tc.lang),
				chromedp.EmulateViewport(tc.width, tc.height),
				chromedp.Navigate(deep),
				chromedp.WaitVisible(chromedp.ID("email")),
			))
			checkPageFits(t, ctx, tc.lang)
			if focused := run(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)); focused != "email" {
				t.Errorf("the email field is not focused on the sign-in page (focus on %q)", focused)
			}

			must(t, "sending the code", chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("email"), "Alice@Contoso.com"),
				chromedp.Click(chromedp.CSS(`button[type=submit]`)),
				chromedp.WaitVisible(chromedp.ID("code")),
			))
			checkPageFits(t, ctx, tc.lang)
			code := codeIn(t, e.smtp.Wait(t, "alice@contoso.com", 1, 10*time.Second).Text)

			// A wrong code first: the error sits next to the field and says what is left.
			must(t, "entering a wrong code", chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("code"), wrongCode(code)),
				chromedp.Click(verifyButton),
				chromedp.WaitVisible(chromedp.ID("code-error")),
			))
			errText := run(t, ctx, chromedp.Text(chromedp.ID("code-error")))
			describedBy := run(t, ctx, chromedp.AttributeValue(chromedp.ID("code"), "aria-describedby"))
			if !strings.Contains(errText, tc.wrong) || describedBy.Value != "code-error" {
				t.Errorf("wrong-code error %q (aria-describedby %q), want %q", errText, describedBy.Value, tc.wrong)
			}

			must(t, "entering the code", chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.ID("code"), code[:4]+" "+code[4:]),
				chromedp.Click(verifyButton),
				chromedp.WaitVisible(chromedp.CSS("pre")), // the browser shows the backend's JSON as text
			))
			if landed := run(t, ctx, chromedp.Location()); landed != deep {
				t.Errorf("landed on %q, want the deep link %q", landed, deep)
			}
			if body := run(t, ctx, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(body, `"X-Auth-Email":["alice@contoso.com"]`) {
				t.Errorf("the backend did not see the guest; page:\n%s", body)
			}

			// Sign out, and back to the same document by signing in again.
			base := strings.TrimSuffix(tc.deep, tc.deep[strings.Index(tc.deep, "docs/"):]) + ".email-otp/"
			must(t, "signing out", chromedp.Do(ctx,
				chromedp.Navigate(tc.origin+base+"signout"),
				chromedp.WaitVisible(chromedp.CSS(`main form button[type=submit]`)),
			))
			back := run(t, ctx, chromedp.AttributeValue(chromedp.CSS(`.alt a`), "href"))
			if back.Value != tc.deep {
				t.Errorf("the sign-out page leads back to %q, want %q", back.Value, tc.deep)
			}
			must(t, "signed out, signing in again", chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
				chromedp.WaitVisible(chromedp.CSS(`a[href*="signin?rd="]`)),
				chromedp.Click(chromedp.CSS(`a[href*="signin?rd="]`)),
				chromedp.WaitVisible(chromedp.ID("email")),
			))
			if prefilled := run(t, ctx, chromedp.Evaluate[string](`document.getElementById("email").value`)); prefilled != "alice@contoso.com" {
				t.Errorf("the sign-in page after sign-out holds %q", prefilled)
			}
			if rd := run(t, ctx, chromedp.Evaluate[string](`document.querySelector("input[name=rd]").value`)); rd != tc.deep {
				t.Errorf("signing in again would land on %q, want %q", rd, tc.deep)
			}
		})
	}
}

// checkPageFits checks the gateway page in the browser: its language and
// direction, and that nothing makes a phone scroll sideways.
func checkPageFits(t *testing.T, ctx context.Context, lang string) {
	t.Helper()
	got := run(t, ctx, chromedp.Evaluate[map[string]any](`({lang: document.documentElement.lang, dir: getComputedStyle(document.documentElement).direction,
		wide: document.scrollingElement.scrollWidth > window.innerWidth})`))
	wantDir := "ltr"
	if lang == "ar" {
		wantDir = "rtl"
	}
	if got["lang"] != lang || got["dir"] != wantDir || got["wide"] != false {
		t.Errorf("page at %s: %v; want lang %s, direction %s, no sideways scroll", run(t, ctx, chromedp.Location()), got, lang, wantDir)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func wrongCode(code string) string {
	if code == "00000000" {
		return "11111111"
	}
	return "00000000"
}

// While the code is still being sent, the enter-code page changes in place
// (a script asks …/status): what the guest has typed stays, the page is not
// reloaded, and the guest finishes with the code once it arrives.
func TestBrowserTypedCodeSurvivesDeliveryUpdates(t *testing.T) {
	e := start(t, gatewayOptions{extra: "delivery {\n\t\t\tfirst_retry 1500ms\n\t\t}"})
	e.smtp.Refuse(tempFail, tempFail)
	ctx := newBrowser(t)
	deep := contoso + "/docs/a.pdf"
	must(t, "asking for a code", chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate(deep),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "zoe@contoso.com"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("code")),
	))
	// The guest starts typing while the mailer is still refusing.
	must(t, "typing half the code", chromedp.Do(ctx,
		void(chromedp.Evaluate[any](`window.sameDocument = true`)),
		chromedp.SendKeys(chromedp.ID("code"), "1234"),
		void(chromedp.Poll[any](`document.getElementById("delivery").textContent.includes("Still trying")`, chromedp.WithPollingTimeout(10*time.Second))),
		void(chromedp.Poll[any](`document.getElementById("delivery").textContent.includes("is on its way")`, chromedp.WithPollingTimeout(15*time.Second))),
	))
	state := run(t, ctx, chromedp.Evaluate[map[string]any](`({typed: document.getElementById("code").value, same: window.sameDocument === true,
		focused: document.activeElement.id, checkLinks: document.querySelectorAll("a.check").length})`))
	if state["typed"] != "1234" || state["same"] != true || state["focused"] != "code" || state["checkLinks"] != float64(0) {
		t.Fatalf("after the delivery changed: %v (want the typed digits kept, no reload, focus kept, no 'Check again' link with a script)", state)
	}
	code := codeIn(t, e.smtp.Wait(t, "zoe@contoso.com", 1, 10*time.Second).Text)
	must(t, "finishing the code", chromedp.Do(ctx,
		void(chromedp.Evaluate[any](`document.getElementById("code").value = ""`)),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.CSS(`form[action$="verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS("pre")),
	))
	if landed := run(t, ctx, chromedp.Location()); landed != deep {
		t.Errorf("landed on %q, want %q", landed, deep)
	}
}

// void runs a and drops its value, so it can be a step of chromedp.Do.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, tg)
		return chromedp.Void{}, err
	}
}

// The dev outbox fits a phone: a long address or link never makes it
// scroll sideways.
func TestBrowserOutboxFitsAPhone(t *testing.T) {
	start(t, gatewayOptions{mailer: "mailer dev"})
	g := newGuest(t)
	long := strings.Repeat("a", 60) + "@contoso.com"
	g.requestCode(contoso, hostBase, "/"+strings.Repeat("very-long-folder-name/", 8)+"doc.pdf", long)
	waitMailIdle(t)
	expectStatus(t, g.get(pathSite+"/.email-otp/outbox"), http.StatusOK, long)
	ctx := newBrowser(t)
	must(t, "opening the outbox", chromedp.Do(ctx,
		chromedp.EmulateViewport(360, 740),
		chromedp.Navigate(pathSite+"/.email-otp/outbox"),
		chromedp.WaitVisible(chromedp.CSS("article")),
	))
	checkPageFits(t, ctx, "en")
}

// speak makes the browser ask for pages in lang, as the guest's browser
// would (Accept-Language).
func speak(lang string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang}})
		return err
	})
}
