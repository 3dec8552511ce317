package integration

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// tapLinkRE finds the one-tap link in a code email's text.
var tapLinkRE = regexp.MustCompile(`(https?://\S+/\.email-otp/tap)#t=(\S+)`)

// tapLinkIn returns the link's page URL and its token (the fragment).
func tapLinkIn(t *testing.T, text string) (page, token string) {
	t.Helper()
	m := tapLinkRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no one-tap link in email text:\n%s", text)
	}
	return m[1], m[2]
}

// requestTapLink walks g to the verify page for email on contoso and
// returns the verify form's CSRF token, the code email and its one-tap link.
func (e *env) requestTapLink(g *guest, protected, email string) (csrf string, mail smtpsink.Mail, page, token string) {
	e.t.Helper()
	csrf = g.requestCode(contoso, hostBase, protected, email)
	mail = e.smtp.Wait(e.t, email, 1, 10*time.Second)
	page, token = tapLinkIn(e.t, mail.Text)
	return csrf, mail, page, token
}

// tap is what the asking browser's page does: read the confirmation page,
// then post the fragment's token with the page's CSRF token.
func (g *guest) tap(page, token string) reply {
	g.t.Helper()
	confirm := g.get(page)
	expectStatus(g.t, confirm, http.StatusOK, `action="`, `name="t"`)
	return g.post(page, url.Values{"csrf": {formValue(g.t, confirm.body, "csrf")}, "t": {token}})
}

func TestOneTapLinkSignsInTheAskingBrowserOnTheDeepLink(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	deep := "/docs/plan.pdf?v=3"
	_, mail, page, token := e.requestTapLink(g, deep, "tapper@contoso.com")
	if !strings.Contains(mail.HTML, "tap#t="+token) {
		t.Errorf("the HTML part lacks the one-tap link")
	}
	if strings.Contains(token, codeIn(t, mail.Text)) {
		t.Errorf("the link's token shows the code in the clear: %s", token)
	}

	// A mail scanner opens every link, GET and HEAD, with no cookies, and
	// follows redirects: nothing is signed in, burned or counted.
	// It opens the "this wasn't me" link too: a GET only asks, so the code
	// and its link still work afterwards.
	scanner := newGuest(t)
	notMe := notMeRE.FindString(mail.Text)
	if notMe == "" {
		t.Fatalf("no \"this wasn't me\" link in the email:\n%s", mail.Text)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, notMe, nil)
		scanner.do(req)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, page, nil)
		r := scanner.do(req)
		if r.StatusCode != http.StatusOK || r.Header.Get("Set-Cookie") != "" {
			t.Errorf("scanner %s: status %d, Set-Cookie %q", method, r.StatusCode, r.Header.Get("Set-Cookie"))
		}
		if method == http.MethodGet && !strings.Contains(r.body, "Open this link where you asked for the code") {
			t.Errorf("scanner's page does not say where the link works:\n%s", r.body)
		}
	}
	// Another browser with the token (forwarded mail) signs nothing in:
	// its own sign-in under way is another challenge, and no try is counted.
	other := newGuest(t)
	other.requestCode(contoso, hostBase, "/", "someone@contoso.com")
	r := other.tap(page, token)
	expectStatus(t, r, http.StatusOK, "Open this link where you asked for the code")
	if other.cookie(contoso+"/", "email_otp_session") != nil {
		t.Fatal("another browser was signed in by the link")
	}

	// The asking browser: one tap, and it lands on the deep link.
	r = g.tap(page, token)
	if landed := expectRedirect(t, r, http.StatusSeeOther); landed != deep {
		t.Fatalf("the tap landed on %q, want %q", landed, deep)
	}
	seen := g.backendView(contoso + deep)
	if first(seen.Headers["X-Auth-Email"]) != "tapper@contoso.com" {
		t.Errorf("backend saw %v", seen.Headers)
	}
}

func TestOneTapLinkAndCodeEndEachOther(t *testing.T) {
	e := start(t, gatewayOptions{})

	// The code typed first: the link is dead.
	g := newGuest(t)
	csrf, mail, page, token := e.requestTapLink(g, "/", "twin@contoso.com")
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {codeIn(t, mail.Text)}}), http.StatusSeeOther)
	g.signOut(contoso, hostBase)
	if r := g.get(page); r.StatusCode != http.StatusOK || strings.Contains(r.body, `name="t"`) {
		t.Errorf("after the code was used the link's page still offers to sign in:\n%s", r.body)
	}

	// They share the code's tries: a code killed by wrong guesses takes
	// the link with it.
	h := newGuest(t)
	csrf, mail, page, token = e.requestTapLink(h, "/", "twin2@contoso.com")
	h.guessWrong(contoso+hostBase, csrf, 5)
	if r := h.get(page); strings.Contains(r.body, `name="t"`) {
		t.Errorf("after the code's last try the link's page still offers to sign in:\n%s", r.body)
	}
	if h.cookie(contoso+"/", "email_otp_session") != nil {
		t.Fatal("signed in after the code died")
	}

	// The link used first: the code is dead. A second browser can't know
	// the asking browser's CSRF token, so the twin is checked where it is
	// decided: the asking browser types the code after its tap.
	k := newGuest(t)
	csrf, mail, page, token = e.requestTapLink(k, "/", "twin3@contoso.com")
	confirm := k.get(page)
	tapCSRF := formValue(t, confirm.body, "csrf")
	expectRedirect(t, k.post(page, url.Values{"csrf": {tapCSRF}, "t": {token}}), http.StatusSeeOther)
	// The tap ended the sign-in under way: the same token again opens nothing.
	r := k.post(page, url.Values{"csrf": {tapCSRF}, "t": {token}})
	if r.StatusCode == http.StatusSeeOther {
		t.Errorf("the link signed in twice")
	}
}

func TestOneTapLinkOfOneTenantDoesNothingOnAnother(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	_, _, _, token := e.requestTapLink(g, "/", "cross@contoso.com")

	// The same browser with a sign-in under way at fabrikam posts contoso's
	// token there: it does not open for fabrikam.
	g.requestCode(fabrikam, hostBase, "/", "cross@contoso.com")
	r := g.tap(fabrikam+hostBase+"tap", token)
	expectStatus(t, r, http.StatusBadRequest, "This link does not work")
	if g.cookie(fabrikam+"/", "email_otp_session") != nil {
		t.Fatal("contoso's link signed in at fabrikam")
	}
}
