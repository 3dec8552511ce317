package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// newBrowser starts a headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
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
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestBrowserGuestFlow walks the whole flow in a real browser, without
// JavaScript on our pages: a deep link, the send-code form, the code from the
// real mail, a wrong code, and the landing on the same link with the backend
// seeing the guest.
func TestBrowserGuestFlow(t *testing.T) {
	e := start(t, gatewayOptions{})
	ctx := newBrowser(t)
	deep := contoso + "/docs/Q3%20report.pdf?version=2"
	verifyButton := chromedp.CSS(`form[action$="verify"] button`)

	must(t, "opening the deep link", chromedp.Do(ctx,
		chromedp.Navigate(deep),
		chromedp.WaitVisible(chromedp.ID("email")),
	))
	if focused := run(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)); focused != "email" {
		t.Errorf("the email field is not focused on the sign-in page (focus on %q)", focused)
	}

	must(t, "sending the code", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("email"), "Alice@Contoso.com"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("code")),
	))
	if at := run(t, ctx, chromedp.Location()); at != contoso+"/.email-otp/verify" {
		t.Errorf("after sending, the browser is at %q", at)
	}
	code := codeIn(t, e.smtp.Wait(t, "alice@contoso.com", 1, 10*time.Second).Text)

	// A wrong code first: the error sits next to the field and says what is left.
	must(t, "entering a wrong code", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), wrongCode(code)),
		chromedp.Click(verifyButton),
		chromedp.WaitVisible(chromedp.ID("code-error")),
	))
	errText := run(t, ctx, chromedp.Text(chromedp.ID("code-error")))
	describedBy := run(t, ctx, chromedp.AttributeValue(chromedp.ID("code"), "aria-describedby"))
	if !strings.Contains(errText, "4 tries left") || describedBy.Value != "code-error" {
		t.Errorf("wrong-code error %q (aria-describedby %q)", errText, describedBy.Value)
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
