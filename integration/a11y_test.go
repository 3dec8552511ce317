package integration

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

//go:embed testdata/axe-core/axe.min.js
var axeSource string

//go:embed testdata/contrast.js
var contrastCheck string

// demoLogo is the demo's Contoso logo (as in Caddyfile.example).
const demoLogo = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='160' height='40'%3E%3Crect width='40' height='40' rx='8' fill='%23005a9e'/%3E%3Ctext x='50' y='27' font-family='sans-serif' font-size='20' font-weight='bold' fill='%23005a9e'%3EContoso%3C/text%3E%3C/svg%3E"

var permFail = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}

// TestPagesAreAccessibleLightAndDark walks every state of the guest's pages
// in Chromium, in light and dark, in English and Arabic, on a phone and a
// desktop, and runs axe-core (WCAG 2.0–2.2 A and AA) on each: no critical
// or serious violation. A contrast check of the rendered colours runs beside
// it, because axe misreads text on a dark canvas.
//
// With SCREENSHOTS=DIR it also saves the main states as PNGs there
// (./xcaddy.sh screenshots writes docs/screenshots).
func TestPagesAreAccessibleLightAndDark(t *testing.T) {
	for _, look := range []pageLook{
		{"light", "en", 360}, {"dark", "en", 360}, {"light", "ar", 360}, {"dark", "ar", 360},
		{"light", "en", 1280}, {"dark", "en", 1280},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", look.scheme, look.lang, look.width), func(t *testing.T) { walkPagesChecking(t, look) })
	}
}

// pageLook is how a guest sees the pages: colour scheme, language, width.
type pageLook struct {
	scheme, lang string
	width        int64
}

// pictured: the looks docs/guests.md shows (phone light and dark, desktop
// light, and Arabic on a dark phone).
func (l pageLook) pictured() bool {
	switch l {
	case pageLook{"light", "en", 360}, pageLook{"dark", "en", 360}, pageLook{"light", "en", 1280}, pageLook{"dark", "ar", 360}:
		return true
	}
	return false
}

// screenshotStates are the states saved with SCREENSHOTS, by file name.
var screenshotStates = map[string]string{
	"sign-in": "signin", "enter-code": "verify", "enter-code, not delivered": "verify-failed",
	"consent": "consent", "forbidden": "forbidden", "signed out": "signedout",
	"one-tap link": "tap", "one-tap link, elsewhere": "tap-elsewhere",
	"passkey offer": "passkey-offer", "sign-in, passkey refused": "signin-passkey-refused",
	"sign-in service not answering": "federation-down",
}

// browser is a new browser that shows pages in the look.
func (l pageLook) browser(t *testing.T) context.Context {
	ctx := newBrowser(t)
	must(t, "setting up the browser", chromedp.Do(ctx, speak(l.lang), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: l.scheme}}})
		return err
	}), chromedp.EmulateViewport(l.width, map[bool]int64{true: 740, false: 800}[l.width < 600])))
	return ctx
}

// pageChecker runs axe-core and the contrast check on the page a browser
// shows, and with SCREENSHOTS=DIR saves the states it has pictures for
// (state → file name) in the pictured looks: the viewport, or with
// wholePage the page from top to bottom.
type pageChecker struct {
	t         *testing.T
	ctx       context.Context
	look      pageLook
	pictures  map[string]string
	wholePage bool
}

func (p pageChecker) check(state string) {
	t, ctx := p.t, p.ctx
	t.Helper()
	var issues []string
	res := run(t, ctx, chromedp.Evaluate[map[string]any](axeSource+`;
		axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}, resultTypes: ["violations"]})
		  .then(r => ({violations: r.violations.filter(v => v.impact === "critical" || v.impact === "serious")
		    .map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).join(", "))}))`,
		chromedp.EvalAwaitPromise))
	for _, v := range res["violations"].([]any) {
		issues = append(issues, "axe "+fmt.Sprint(v))
	}
	for _, f := range run(t, ctx, chromedp.Evaluate[[]string](contrastCheck)) {
		issues = append(issues, "contrast "+f)
	}
	if len(issues) > 0 {
		t.Errorf("%s (%s, %s, %d px) at %s:\n  %s", state, p.look.scheme, p.look.lang, p.look.width, run(t, ctx, chromedp.Location()), strings.Join(issues, "\n  "))
	}
	if dir, name := os.Getenv("SCREENSHOTS"), p.pictures[state]; dir != "" && name != "" && p.look.pictured() {
		shot := chromedp.CaptureScreenshot()
		if p.wholePage {
			shot = chromedp.FullScreenshot(100) // 100: PNG
		}
		png := run(t, ctx, shot)
		file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%s.png", name, map[bool]string{true: "phone", false: "desktop"}[p.look.width < 600], p.look.scheme, p.look.lang))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func walkPagesChecking(t *testing.T, look pageLook) {
	scheme, lang := look.scheme, look.lang
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	// A branded tenant: its accent must pass the same checks as the default.
	brand := `display_name "Contoso Shared Docs"
		branding {
			logo "` + demoLogo + `"
			accent 005a9e 7fbfff
			support mailto:help@contoso.example
			privacy https://contoso.example/privacy
		}`
	// One address belongs to an identity provider that never answers.
	unreachable := fmt.Sprintf("federation {\n\t\t\tprovider northwind {\n\t\t\t\tissuer http://localhost:%d\n\t\t\t\tclient_id gateway\n\t\t\t\tdomains idp-%s-%s@contoso.com\n\t\t\t}\n\t\t}", closedPort(t), scheme, lang)
	e.load(e.financeSite("allow *@contoso.com\n\t\tconsent\n\t\tdelivery {\n\t\t\tfirst_retry 1h\n\t\t}\n\t\t"+unreachable, brand))
	ctx := look.browser(t)

	check := pageChecker{t, ctx, look, screenshotStates, false}.check
	submit := chromedp.CSS(`main form button[type=submit]`)
	email := "staff-" + scheme + "-" + lang + "@contoso.com"

	must(t, "opening a deep link", chromedp.Do(ctx, chromedp.Navigate(contoso+"/finance/q3.xlsx"), chromedp.WaitVisible(chromedp.ID("email"))))
	check("sign-in")
	must(t, "a wrong address", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("email"), "not an address"), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("email-error"))))
	check("sign-in with an error")
	must(t, "sending the code", chromedp.Do(ctx,
		void(chromedp.Evaluate[any](`document.getElementById("email").value = ""`)),
		chromedp.SendKeys(chromedp.ID("email"), email), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("code"))))
	check("enter-code")
	mail := e.smtp.Wait(t, email, 1, 10*time.Second)
	code := codeIn(t, mail.Text)
	must(t, "a wrong code", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), wrongCode(code)), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("code-error"))))
	check("enter-code with an error")
	must(t, "the right code", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(submit), chromedp.WaitVisible(chromedp.CSS(`button[value=accept]`))))
	check("consent")
	must(t, "consenting", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[value=accept]`)), chromedp.WaitVisible(chromedp.CSS(`a[href$="signout"]`))))
	check("forbidden")
	must(t, "the sign-out page", chromedp.Do(ctx, chromedp.Navigate(contoso+hostBase+"signout"), chromedp.WaitVisible(submit)))
	check("sign-out")
	must(t, "signing out", chromedp.Do(ctx, chromedp.Click(submit), chromedp.WaitVisible(chromedp.CSS(`a[href*="signin?rd="]`))))
	check("signed out")
	must(t, "a malformed link", chromedp.Do(ctx, chromedp.Navigate(contoso+"/docs;jsessionid=1"), chromedp.WaitVisible(chromedp.CSS("h1"))))
	check("error page")
	must(t, "the 'this wasn't me' link", chromedp.Do(ctx, chromedp.Navigate(notMeRE.FindString(mail.Text)), chromedp.WaitVisible(submit)))
	check("this wasn't me")
	tapAddress := "tap-" + email
	must(t, "asking for a code to tap", chromedp.Do(ctx,
		chromedp.Navigate(contoso+hostBase+"signin?change=1"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), tapAddress), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("code"))))
	tapLink := tapLinkRE.FindString(e.smtp.Wait(t, tapAddress, 1, 10*time.Second).Text)
	must(t, "the one-tap link", chromedp.Do(ctx, chromedp.Navigate(tapLink), chromedp.WaitEnabled(submit)))
	check("one-tap link")
	if shown := run(t, ctx, chromedp.Location()); strings.Contains(shown, "#") {
		t.Errorf("the token stays in the address bar after the page read it: %s", shown)
	}
	must(t, "tapping", chromedp.Do(ctx, chromedp.Click(submit),
		chromedp.WaitNotPresent(chromedp.CSS(`form.tap`))))
	must(t, "the used one-tap link", chromedp.Do(ctx, chromedp.Navigate(tapLink), chromedp.WaitVisible(chromedp.CSS("h1"))))
	check("one-tap link, elsewhere")

	for _, tc := range []struct {
		state, address, shows string
		refuse                *smtp.SMTPError
	}{
		{"enter-code, still trying", "retry-" + email, "retrying", tempFail},
		{"enter-code, not delivered", "failed-" + email, "failed", permFail},
	} {
		e.smtp.Refuse(tc.refuse)
		must(t, tc.state, chromedp.Do(ctx,
			chromedp.Navigate(contoso+hostBase+"signin?change=1"), chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), tc.address), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("code")),
			// The page's script shows the change; the page as the server
			// renders it for that state is checked.
			void(chromedp.Poll[any](`document.querySelector(".verify").dataset.delivery === "`+tc.shows+`"`, chromedp.WithPollingTimeout(10*time.Second))),
			chromedp.Navigate(contoso+hostBase+"verify"), chromedp.WaitVisible(chromedp.ID("code")),
		))
		check(tc.state)
	}

	must(t, "an address whose provider does not answer", chromedp.Do(ctx,
		chromedp.Navigate(contoso+hostBase+"signin?change=1"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "idp-"+scheme+"-"+lang+"@contoso.com"), chromedp.Click(submit),
		chromedp.WaitVisible(chromedp.CSS(`input[name=via] ~ button`))))
	check("sign-in service not answering")

	// A device that can make passkeys: the offer after a code, and the
	// sign-in page saying why a passkey (deleted since) did not sign in.
	authenticator(t, ctx)
	must(t, "signing in by code on a device that can make a passkey", chromedp.Do(ctx,
		chromedp.Navigate(contoso+hostBase+"signin?change=1"), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("code"))))
	again := codeIn(t, e.smtp.Wait(t, email, 2, 10*time.Second).Text)
	must(t, "the code, then the offer", chromedp.Do(ctx,
		void(chromedp.Poll[any](`document.querySelector("form.code input[name=passkey_ready]") !== null`, chromedp.WithPollingTimeout(5*time.Second))),
		chromedp.SendKeys(chromedp.ID("code"), again), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("passkey-create"))))
	check("passkey offer")
	must(t, "making the passkey", chromedp.Do(ctx, chromedp.Click(chromedp.ID("passkey-create")), chromedp.WaitVisible(chromedp.CSS("pre"))))
	forgetSession(t, ctx, contoso+"/")
	var list passkeyViews
	adminAPI(t, http.MethodGet, "contoso.localhost/"+email+"/passkeys", nil, &list)
	if len(list) != 1 {
		t.Fatalf("the guest holds %d passkeys, want 1", len(list))
	}
	adminAPI(t, http.MethodDelete, "contoso.localhost/"+email+"/passkeys/"+list[0].ID, nil, nil)
	passkeySignIn(t, ctx, contoso+"/", false)
	must(t, "the refusal", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("passkey-error"))))
	check("sign-in, passkey refused")
}
