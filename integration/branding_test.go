package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// A tenant's look reaches its pages and emails: logo (allowed by the page's
// policy), accent, help and privacy links, and the support contact on the
// "not allowed" page.
func TestBrandingOnPagesAndEmails(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	look := `display_name "Contoso Docs"
		branding {
			logo https://cdn.contoso.example/logo.png
			accent 7a1fa2 d7a8ff
			support mailto:help@contoso.example
			privacy https://contoso.example/privacy
		}`
	e.load(e.financeSite("allow *@contoso.com", look))
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	expectStatus(t, page, http.StatusOK,
		`<img class="logo" src="https://cdn.contoso.example/logo.png" alt="Contoso Docs"`,
		`--link: #7a1fa2`, `--link: #d7a8ff`,
		`<a href="mailto:help@contoso.example">Help</a>`, `<a href="https://contoso.example/privacy">Privacy</a>`)
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.contoso.example;") {
		t.Errorf("the page's policy does not let the logo load: %q", csp)
	}

	csrf := g.requestCode(contoso, hostBase, "/finance/q3.xlsx", "staff@contoso.com")
	mail := e.smtp.Wait(t, "staff@contoso.com", 1, 10*time.Second)
	if !strings.Contains(mail.Text, "Questions? Contact support: mailto:help@contoso.example") || !strings.Contains(mail.HTML, `src="https://cdn.contoso.example/logo.png"`) {
		t.Errorf("the code email lacks the tenant's look:\n%s\n%s", mail.Text, mail.HTML)
	}
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {codeIn(t, mail.Text)}}), http.StatusSeeOther)
	expectStatus(t, g.get(contoso+"/finance/q3.xlsx"), http.StatusForbidden,
		"If you think you should have access:", `<a href="mailto:help@contoso.example">Contact support</a>`)
}

// Sign-out remembers the document: the sign-out page leads back to it, and
// the signed-out page's sign-in link lands on it again.
func TestSignOutKeepsTheWayBack(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	deep := "/t/acme/reports/q3.xlsx?sheet=2"
	e.signIn(g, pathSite, acmeBase, deep, "rita@contoso.com")
	page := g.get(pathSite + acmeBase + "signout")
	expectStatus(t, page, http.StatusOK, `href="`+deep+`">Back to the document</a>`)
	out := g.post(pathSite+acmeBase+"signout", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "rd": {formValue(t, page.body, "rd")}})
	expectStatus(t, out, http.StatusOK, `href="`+acmeBase+`signin?rd=`+strings.ToLower(url.QueryEscape(deep))+`"`)
	// A backend's own link may name the page it is on.
	e.signIn(g, pathSite, acmeBase, deep, "rita@contoso.com")
	expectStatus(t, g.get(pathSite+acmeBase+"signout?rd="+url.QueryEscape("/t/acme/wiki/")), http.StatusOK, `href="/t/acme/wiki/">Back to the document</a>`)
	// …but only inside the tenant.
	expectStatus(t, g.get(pathSite+acmeBase+"signout?rd="+url.QueryEscape("https://evil.example/")), http.StatusOK, `href="/t/acme/">Back to the document</a>`)
}
