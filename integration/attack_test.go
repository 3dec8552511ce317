package integration

// Findings of an outside attack on the gateway, each replayed through a real
// Caddy. Every test here failed before its fix; integration/SECURITY-TESTS.md
// lists them by finding.

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// getRaw sends path exactly as written (no cleaning, no re-encoding).
func (g *guest) getRaw(origin, rawPath string, headers ...string) reply {
	g.t.Helper()
	u, _ := url.Parse(origin)
	req, _ := http.NewRequest(http.MethodGet, origin+"/", nil)
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: rawPath}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return g.do(req)
}

// inviteWithPaths invites addr to contoso with path prefixes and waits for
// the invitation email, so later code emails count from there.
func (e *env) inviteWithPaths(addr string, paths ...string) {
	e.t.Helper()
	var inv invited
	if s := adminAPI(e.t, http.MethodPost, "contoso.localhost", map[string]any{
		"email": addr, "url": contoso + paths[0], "invited_by": "alice@contoso.com", "paths": paths,
	}, &inv); s != http.StatusCreated {
		e.t.Fatalf("invite: %d", s)
	}
	e.smtp.Wait(e.t, addr, 1, 10*time.Second)
}

// Finding 1: invitation paths escaped with dot-segments, encoded slashes and
// empty segments on a host tenant.
func TestInvitationPathsCannotBeEscaped(t *testing.T) {
	e := start(t, gatewayOptions{})
	e.inviteWithPaths("guest@outside.example", "/files/reports/")
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/files/reports/q3.pdf", "guest@outside.example")
	if seen := g.backendView(contoso + "/files/reports/q3.pdf"); seen.Path != "/files/reports/q3.pdf" {
		t.Fatalf("backend saw %q", seen.Path)
	}
	for _, p := range []string{
		"/files/reports/%2e%2e/secret.txt",
		"/files/reports/../secret.txt",
		"/files/reports/..%2fsecret.txt",
		"/files/reports/%2E%2E%2Fsecret.txt",
		"/files/reports//../../files/secret.txt",
		"/files/reports%2f..%2fsecret.txt",
		"/files/reports/./../secret.txt",
		"/files/reports/..%5csecret.txt",
		"/files/reports/%252e%252e/secret.txt",
	} {
		r := g.getRaw(contoso, p)
		if r.StatusCode != http.StatusBadRequest || strings.Contains(r.body, `"headers"`) {
			t.Errorf("GET %s: %d, want 400 and no backend answer:\n%.300s", p, r.StatusCode, r.body)
		}
	}
}

// Finding 4: ';' parameters make a Tomcat/Spring backend resolve another
// tenant's path, in every tenant mode.
func TestSemicolonSegmentsAreRefused(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, pathSite, acmeBase, "/t/acme/x", "victim@contoso.com")
	e.signIn(g, contoso, hostBase, "/x", "victim@contoso.com")
	for _, c := range []struct{ origin, path string }{
		{pathSite, "/t/acme/..;/globex/x"},
		{pathSite, "/t/acme/%2e%2e;/globex/x"},
		{pathSite, "/t/acme/..%3b/globex/x"},
		{pathSite, "/t/acme/.;/x"},
		{pathSite, "/t/acme/docs;jsessionid=1/x"},
		{contoso, "/docs/..;/admin/x"},
		{contoso, "/docs;x=1/a"},
	} {
		r := g.getRaw(c.origin, c.path)
		if r.StatusCode != http.StatusBadRequest || strings.Contains(r.body, `"headers"`) {
			t.Errorf("GET %s%s: %d, want 400 and no backend answer:\n%.300s", c.origin, c.path, r.StatusCode, r.body)
		}
	}
	// A ';' in the query is no path parameter.
	if seen := g.backendView(pathSite + "/t/acme/x?a=1;b=2"); seen.Path != "/t/acme/x?a=1;b=2" {
		t.Errorf("backend saw %q", seen.Path)
	}
}

// Finding 9: a fragment in rd was cleaned as a path by the redirect.
func TestRedirectWithFragmentStaysInTheTenant(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	page := g.get(pathSite + acmeBase + "signin?rd=" + url.QueryEscape("/t/acme/#/../../globex/x"))
	expectStatus(t, page, http.StatusOK)
	if rd := formValue(t, page.body, "rd"); rd != "/t/acme/" {
		t.Errorf("rd on the page %q, want the tenant root", rd)
	}
	csrf := formValue(t, page.body, "csrf")
	expectRedirect(t, g.post(pathSite+acmeBase+"send", url.Values{"csrf": {csrf}, "email": {"bob@contoso.com"}, "rd": {"/t/acme/#/../../globex/x"}}), http.StatusSeeOther)
	v := g.get(pathSite + acmeBase + "verify")
	code := codeIn(t, e.smtp.Wait(t, "bob@contoso.com", 1, 10*time.Second).Text)
	landed := expectRedirect(t, g.post(pathSite+acmeBase+"verify", url.Values{"csrf": {formValue(t, v.body, "csrf")}, "code": {code}}), http.StatusSeeOther)
	if !strings.HasPrefix(landed, "/t/acme/") {
		t.Errorf("landed on %q, outside /t/acme/", landed)
	}
}

// Finding 10: /t/acme (no slash) looped back to sign-in after the code,
// because the session cookie's Path is /t/acme/.
func TestPathTenantWithoutTrailingSlashLandsSignedIn(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	r := g.get(pathSite + "/t/acme?x=1")
	if loc := expectRedirect(t, r, http.StatusPermanentRedirect); loc != "/t/acme/?x=1" {
		t.Fatalf("redirect to %q, want /t/acme/?x=1", loc)
	}
	landed := e.signIn(g, pathSite, acmeBase, "/t/acme/?x=1", "bob@contoso.com")
	if seen := g.backendView(pathSite + landed); seen.Path != "/t/acme/?x=1" {
		t.Errorf("backend saw %q", seen.Path)
	}
	// An rd without the slash lands on the root with it.
	page := g.get(pathSite + acmeBase + "signin?rd=%2Ft%2Facme")
	if rd := formValue(t, page.body, "rd"); rd != "/t/acme/" {
		t.Errorf("rd %q, want /t/acme/", rd)
	}
}

// Finding 7: Connection and Trailer let a signed-in client remove or smuggle
// identity headers.
func TestHopByHopHeadersCannotTouchIdentity(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/x", "victim@contoso.com")
	seen := g.backendView(contoso+"/x", "Connection", "X-Auth-Email, x_auth_tenant, keep-alive")
	if first(seen.Headers["X-Auth-Email"]) != "victim@contoso.com" || first(seen.Headers["X-Auth-Tenant"]) != "contoso.localhost" {
		t.Errorf("identity after Connection: X-Auth-Email: backend saw %v", seen.Headers)
	}

	// A chunked POST declaring X-Auth-Email as a trailer.
	body := &chunkedBody{parts: []string{"a=1"}}
	req, _ := http.NewRequest(http.MethodPost, contoso+"/upload", body)
	req.ContentLength = -1
	req.Header.Set("Accept", "application/json")
	req.Trailer = http.Header{"X-Auth-Email": nil, "X-Auth-Tenant": nil, "X-Other": nil}
	body.onEOF = func() {
		req.Trailer.Set("X-Auth-Email", "admin@contoso.com")
		req.Trailer.Set("X-Auth-Tenant", "fabrikam.localhost")
		req.Trailer.Set("X-Other", "kept")
	}
	trailers := make(chan http.Header, 1)
	e.backend.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		trailers <- r.Trailer.Clone()
		w.WriteHeader(http.StatusNoContent)
	})
	resp := g.do(req)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST: %d %s", resp.StatusCode, resp.body)
	}
	got := <-trailers
	for name := range got {
		if normalize(name) == "x-auth-email" || normalize(name) == "x-auth-tenant" {
			t.Errorf("backend got trailer %s: %v", name, got[name])
		}
	}
}

// chunkedBody is a request body of unknown length that runs onEOF before it
// ends, so the client fills in trailers.
type chunkedBody struct {
	parts []string
	onEOF func()
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if len(b.parts) == 0 {
		if b.onEOF != nil {
			b.onEOF()
			b.onEOF = nil
		}
		return 0, io.EOF
	}
	n := copy(p, b.parts[0])
	b.parts = b.parts[1:]
	return n, nil
}

// Finding 8: with email_otp @matcher, requests the matcher leaves out kept
// the client's identity headers.
func TestUnmatchedRequestsLoseClientIdentityHeaders(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	cfg := strings.Replace(e.contosoSite("allow *@contoso.com", ""), "\temail_otp {", "\t@private path /private/*\n\temail_otp @private {", 1)
	e.load(cfg)
	g := newGuest(t)
	seen := g.backendView(contoso+"/public/x", "X-Auth-Email", "admin@contoso.com", "X_Auth_Tenant", "fabrikam", "x-auth-guest-status", "redeemed")
	for name := range seen.Headers {
		if strings.HasPrefix(normalize(name), "x-auth-") {
			t.Errorf("unmatched request reached the backend with %s: %v", name, seen.Headers[name])
		}
	}
	expectRedirect(t, g.get(contoso+"/private/x"), http.StatusFound)
}

// anyHostSite is a site that answers every Host name, with path tenants and
// more gateway lines.
func (e *env) anyHostSite(extra string) string {
	return e.site(":9080", "tenant path /t/\n\t\ttenants acme\n\t\tallow *@contoso.com\n\t\t"+extra, "")
}

// sendWithHost asks for a code from a fresh browser, every request naming
// host in its Host header.
func sendWithHost(t *testing.T, host, base, email string) {
	g := newGuest(t)
	withHost := func(req *http.Request) reply { req.Host = host; return g.do(req) }
	req, _ := http.NewRequest(http.MethodGet, pathSite+base+"signin", nil)
	page := withHost(req)
	expectStatus(t, page, http.StatusOK)
	form := url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {email}, "rd": {"/t/acme/doc"}}
	req, _ = http.NewRequest(http.MethodPost, pathSite+base+"send", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+host)
	expectRedirect(t, withHost(req), http.StatusSeeOther)
}

// Finding 2: on a site that answers any Host, the code email carried the
// attacker's Host in its links and one-time-code line.
func TestBaseURLKeepsTheAttackersHostOutOfMail(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.anyHostSite("base_url https://docs.example.com"))
	sendWithHost(t, "evil.example:9080", acmeBase, "victim@contoso.com")
	mail := e.smtp.Wait(t, "victim@contoso.com", 1, 10*time.Second)
	if strings.Contains(mail.Text, "evil.example") || strings.Contains(mail.HTML, "evil.example") {
		t.Errorf("the attacker's host is in the email:\n%s", mail.Text)
	}
	for _, want := range []string{"https://docs.example.com/t/acme/.email-otp/notme?t=", "@docs.example.com #"} {
		if !strings.Contains(mail.Text, want) {
			t.Errorf("email lacks %q:\n%s", want, mail.Text)
		}
	}
}

// Finding 6: the query of rd and the User-Agent were copied into the code
// email next to the real code.
func TestAttackerTextStaysOutOfTheCodeEmail(t *testing.T) {
	e := start(t, gatewayOptions{})
	lure := "Your access expires today. Call +1-555-0100"
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	rd := "/docs/a?" + url.QueryEscape(lure) + "&b=" + strings.Repeat("x", 100)
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{
		"csrf": {formValue(t, page.body, "csrf")}, "email": {"bob@contoso.com"}, "rd": {rd},
	}, "User-Agent", lure), http.StatusSeeOther)
	mail := e.smtp.Wait(t, "bob@contoso.com", 1, 10*time.Second)
	for _, part := range []string{mail.Text, mail.HTML} {
		if strings.Contains(part, "555-0100") || strings.Contains(part, "expires today") || strings.Contains(part, "xxxxx") {
			t.Errorf("attacker's text in the email:\n%s", part)
		}
	}
	if !strings.Contains(mail.Text, "/docs/a") {
		t.Errorf("the path is missing:\n%s", mail.Text)
	}

	// A real browser is named by family and system, and a long path is cut.
	g = newGuest(t)
	page = g.get(contoso + hostBase + "signin")
	long := "/docs/" + strings.Repeat("Call-now-", 20)
	chrome := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{
		"csrf": {formValue(t, page.body, "csrf")}, "email": {"bob@contoso.com"}, "rd": {long},
	}, "User-Agent", chrome), http.StatusSeeOther)
	mail = e.smtp.Wait(t, "bob@contoso.com", 2, 10*time.Second)
	if !strings.Contains(mail.Text, "Chrome on Windows") || strings.Contains(mail.Text, "AppleWebKit") {
		t.Errorf("browser not named by family:\n%s", mail.Text)
	}
	if strings.Contains(mail.Text, long) {
		t.Errorf("a %d-character path was copied whole:\n%s", len(long), mail.Text)
	}
}

// Finding 12: the "this wasn't me" link worked again and again, for any code.
func TestNotMeLinkWorksOnceForItsOwnCode(t *testing.T) {
	e := start(t, gatewayOptions{extra: "limits {\n not_me 1s\n}"})
	g := newGuest(t)
	g.requestCode(contoso, hostBase, "/", "jane@contoso.com")
	link := notMeRE.FindString(e.smtp.Wait(t, "jane@contoso.com", 1, 10*time.Second).Text)
	// Short enough for a line of a plain-text email, and not to be forged:
	// another address, or another tenant's gateway, gets the bad-link page.
	if len(link) > 200 {
		t.Errorf("the link is %d characters: %s", len(link), link)
	}
	token := strings.TrimPrefix(link[strings.Index(link, "?t="):], "?t=")
	parts := strings.Split(token, "~")
	forged := strings.Join([]string{parts[0], parts[1], base64.RawURLEncoding.EncodeToString([]byte("boss@contoso.com")), parts[3]}, "~")
	expectStatus(t, newGuest(t).get(contoso+hostBase+"notme?t="+forged), http.StatusBadRequest, "This link does not work")
	expectStatus(t, newGuest(t).get(fabrikam+hostBase+"notme?t="+token), http.StatusBadRequest, "This link does not work")
	confirm := func() reply {
		other := newGuest(t)
		page := other.get(link)
		expectStatus(t, page, http.StatusOK)
		return other.post(contoso+hostBase+"notme", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "t": {formValue(t, page.body, "t")}})
	}
	expectStatus(t, confirm(), http.StatusOK, "The code was cancelled")
	waitPast(time.Now().Add(time.Second)) // the stop (1s here) has ended
	// The owner asks again and gets a new code; the old link can't cancel it.
	csrf := g.requestCode(contoso, hostBase, "/", "jane@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "jane@contoso.com", 2, 10*time.Second).Text)
	expectStatus(t, confirm(), http.StatusGone, "used already")
	if loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther); loc != "/" {
		t.Errorf("the new code after a replayed link: %q", loc)
	}
}

var notMeRE = regexp.MustCompile(`https?://\S+/\.email-otp/notme\?t=\S+`)

// Also: '%' and '!' in the local part route mail through another host while
// passing a domain rule.
func TestSourceRoutedAddressesAreRefused(t *testing.T) {
	e := start(t, gatewayOptions{})
	for _, addr := range []string{"victim%evil.example@contoso.com", "evil.example!victim@contoso.com"} {
		r := sendAs(t, addr)
		expectStatus(t, r, http.StatusUnprocessableEntity, "routes mail through another host")
	}
	waitMailIdle(t)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d emails sent", n)
	}
}

// Finding 5: a stranger's send cancelled the owner's live code.
func TestStrangersSendDoesNotCancelTheOwnersCode(t *testing.T) {
	e := start(t, gatewayOptions{})
	owner, stranger := newGuest(t), newGuest(t)
	csrf := owner.requestCode(contoso, hostBase, "/doc", "joan@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "joan@contoso.com", 1, 10*time.Second).Text)
	stranger.requestCode(contoso, hostBase, "/doc", "joan@contoso.com")
	strangerCode := codeIn(t, e.smtp.Wait(t, "joan@contoso.com", 2, 10*time.Second).Text)
	if loc := expectRedirect(t, owner.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther); loc != "/doc" {
		t.Fatalf("the owner's code after a stranger's send: %q", loc)
	}
	// The stranger's own code is no use in the owner's browser.
	owner2 := newGuest(t)
	csrf2 := owner2.requestCode(contoso, hostBase, "/doc", "joan@contoso.com")
	if r := owner2.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf2}, "code": {strangerCode}}); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("another browser's code: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// Finding 14: the admin API took ".." for a tenant and listed (and parsed)
// the gateway's own storage.
func TestAdminAPIRefusesTenantsNoGatewayServes(t *testing.T) {
	e := start(t, gatewayOptions{})
	e.signIn(newGuest(t), contoso, hostBase, "/", "sue@contoso.com")
	for _, p := range []string{"%2e%2e", "%2E%2e", "%2e", "a%2fb", "contoso.localhost%2f..", "-%00"} {
		var body apiErr
		if s := adminAPI(t, http.MethodGet, p, nil, &body); s != http.StatusBadRequest {
			t.Errorf("GET guests/%s: %d, want 400 (%s)", p, s, body.Error)
		}
	}
	// A host tenant named in capitals is that host tenant.
	var list []directory.Guest
	if s := adminAPI(t, http.MethodGet, "CONTOSO.localhost", nil, (*guestList)(&list)); s != http.StatusOK || len(list) != 1 || list[0].Email != "sue@contoso.com" {
		t.Errorf("GET guests/CONTOSO.localhost: %d %+v", s, list)
	}
}

// Finding 3: path tenants share one browser origin. A page of another tenant
// can plant a session cookie on a subtree, have the backend serve its
// responses' Set-Cookie, and read the session endpoint.
func TestPathTenantsCannotPlantOrReadSessions(t *testing.T) {
	e := start(t, gatewayOptions{})
	attacker, victim := newGuest(t), newGuest(t)
	e.signIn(attacker, pathSite, acmeBase, "/t/acme/", "mallory@contoso.com")
	e.signIn(victim, pathSite, acmeBase, "/t/acme/", "victim@contoso.com")
	planted := attacker.cookie(pathSite+"/t/acme/", "email_otp_session")
	own := victim.cookie(pathSite+"/t/acme/", "email_otp_session")

	// The browser sends the planted cookie (longer Path) first.
	r := newGuest(t).get(pathSite+"/t/acme/docs/x", "Cookie", "email_otp_session="+planted.Value+"; email_otp_session="+own.Value)
	if r.StatusCode != http.StatusBadRequest || strings.Contains(r.body, "mallory") && strings.Contains(r.body, `"headers"`) {
		t.Errorf("two sessions in one request: %d\n%.400s", r.StatusCode, r.body)
	}
	// Sign-out from that state ends both, so the planted one stops working.
	page := newGuest(t).get(pathSite+acmeBase+"signout", "Cookie", "email_otp_session="+planted.Value+"; email_otp_session="+own.Value)
	expectStatus(t, page, http.StatusOK)
	expectStatus(t, newGuest(t).post(pathSite+acmeBase+"signout", url.Values{"csrf": {formValue(t, page.body, "csrf")}},
		"Cookie", "email_otp_session="+planted.Value+"; email_otp_session="+own.Value), http.StatusOK)
	expectRedirect(t, newGuest(t).get(pathSite+"/t/acme/x", "Cookie", "email_otp_session="+planted.Value), http.StatusFound)

	// The backend's Set-Cookie with the gateway's names never reaches the browser.
	g := newGuest(t)
	e.signIn(g, pathSite, acmeBase, "/t/acme/", "victim@contoso.com")
	e.backend.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "email_otp_session=planted; Path=/t/acme/docs/")
		w.Header().Add("Set-Cookie", "__Secure-email_otp_session=planted; Path=/t/acme/; Secure")
		w.Header().Add("Set-Cookie", " email_otp_pending =planted")
		w.Header().Add("Set-Cookie", "app=kept; Path=/")
		_, _ = io.WriteString(w, "ok")
	})
	resp := g.get(pathSite + "/t/acme/page")
	expectStatus(t, resp, http.StatusOK, "ok")
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 1 || !strings.HasPrefix(sc[0], "app=kept") {
		t.Errorf("Set-Cookie from the backend: %q", sc)
	}

	// The session endpoint answers this tenant's pages and plain clients only.
	sessionURL := pathSite + acmeBase + "session"
	for _, c := range []struct {
		headers []string
		want    int
	}{
		{[]string{"Accept", "application/json"}, http.StatusOK},
		{[]string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Referer", pathSite + "/t/acme/app"}, http.StatusOK},
		{[]string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate"}, http.StatusOK},
		{[]string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Referer", pathSite + "/t/evil/page"}, http.StatusForbidden},
		{[]string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}, http.StatusForbidden},
		{[]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"}, http.StatusForbidden},
		{[]string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "no-cors"}, http.StatusForbidden},
		{[]string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{[]string{"Referer", pathSite + "/t/evil/page"}, http.StatusForbidden},
	} {
		r := g.get(sessionURL, c.headers...)
		if r.StatusCode != c.want || r.StatusCode == http.StatusOK && !strings.Contains(r.body, "victim@contoso.com") ||
			r.StatusCode != http.StatusOK && strings.Contains(r.body, "victim@contoso.com") {
			t.Errorf("GET session with %v: %d, want %d\n%s", c.headers, r.StatusCode, c.want, r.body)
		}
	}
}

// Finding 13: one tenant id meant the same tenant in every mode: a session
// of the path tenant /t/contoso.localhost/ opened the host tenant
// contoso.localhost, and sign-ins there wrote the host tenant's directory.
func TestTenantModesAreSeparate(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, pathSite, "/t/contoso.localhost/.email-otp/", "/t/contoso.localhost/", "pat@contoso.com")
	c := g.cookie(pathSite+"/t/contoso.localhost/", "email_otp_session")
	if c == nil {
		t.Fatal("no session cookie")
	}
	expectRedirect(t, newGuest(t).get(contoso+"/x", "Cookie", c.Name+"="+c.Value), http.StatusFound)

	var list []directory.Guest
	if s := adminAPI(t, http.MethodGet, "contoso.localhost", nil, (*guestList)(&list)); s != http.StatusOK || len(list) != 0 {
		t.Errorf("host tenant's directory after a path tenant's sign-in: %d %+v", s, list)
	}
	if s := adminAPI(t, http.MethodGet, "path:contoso.localhost", nil, (*guestList)(&list)); s != http.StatusOK || len(list) != 1 || list[0].Email != "pat@contoso.com" {
		t.Errorf("path tenant's directory: %d %+v", s, list)
	}
	// Backends still see the bare id.
	if seen := g.backendView(pathSite + "/t/contoso.localhost/x"); first(seen.Headers["X-Auth-Tenant"]) != "contoso.localhost" {
		t.Errorf("X-Auth-Tenant %v", seen.Headers["X-Auth-Tenant"])
	}
}

// Finding 5: a stranger who knows an address kept its owner out: strangers'
// sends and wrong codes held every browser. A browser in which the address
// signed in before keeps limits of its own, also after signing out.
func TestStrangersCannotKeepTheOwnerOut(t *testing.T) {
	e := start(t, gatewayOptions{extra: "limits {\n per_address 2 1h\n backoff 1h 1h\n}"})
	owner := newGuest(t)
	e.signIn(owner, contoso, hostBase, "/doc", "olga@contoso.com")
	if dev := owner.cookie(contoso+hostBase, "email_otp_device"); dev == nil || dev.Value == "" {
		t.Fatal("no device marker after sign-in")
	}
	expectStatus(t, owner.signOut(contoso, hostBase), http.StatusOK)

	// A stranger asks for a code for the owner's address and kills it.
	stranger := newGuest(t)
	csrf := stranger.requestCode(contoso, hostBase, "/doc", "olga@contoso.com")
	e.smtp.Wait(t, "olga@contoso.com", 2, 10*time.Second)
	stranger.guessWrong(contoso+hostBase, csrf, 5)
	// Strangers are now held (back-off), and their sends stay capped.
	newGuest(t).requestCodeHeld(contoso, "olga@contoso.com")
	waitMailIdle(t)
	if n := e.smtp.Count("olga@contoso.com"); n != 2 {
		t.Fatalf("%d emails, want 2 (the owner's first and the stranger's)", n)
	}
	// The owner's browser is not held: a code arrives and works.
	if landed := e.signIn(owner, contoso, hostBase, "/doc", "olga@contoso.com"); landed != "/doc" {
		t.Fatalf("owner landed on %q", landed)
	}
}

// Finding 11: locks shared the memory store's caches with what every send
// writes, so a flood of sends to other addresses evicted them.
func TestFloodOfSendsDoesNotLiftALock(t *testing.T) {
	e := start(t, gatewayOptions{extra: "store memory {\n max_challenges 50\n}\nmax_attempts 2\nlimits {\n lock_after 2 1h\n resend_cooldown 1s\n}"})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "lena@contoso.com")
	e.smtp.Wait(t, "lena@contoso.com", 1, 10*time.Second)
	g.guessWrong(contoso+hostBase, csrf, 2)
	newGuest(t).requestCodeHeld(contoso, "lena@contoso.com")
	// 150 sends to other addresses, from one browser.
	flood := newGuest(t)
	page := flood.get(contoso + hostBase + "signin")
	fcsrf := formValue(t, page.body, "csrf")
	// The memory store holds 50 challenges: once full it refuses new sends
	// with 429 rather than push out the lock.
	busy := 0
	for i := 0; i < 150; i++ {
		r := flood.post(contoso+hostBase+"send", url.Values{"csrf": {fcsrf}, "email": {fmt.Sprintf("f%d@example.org", i)}})
		switch r.StatusCode {
		case http.StatusSeeOther:
		case http.StatusTooManyRequests:
			busy++
		default:
			t.Fatalf("send %d: status %d, want 303 or 429; body:\n%s", i, r.StatusCode, r.body)
		}
	}
	if busy == 0 {
		t.Errorf("150 sends into a store of 50 were all taken: the flood never filled it, so the test proves nothing")
	}
	newGuest(t).requestCodeHeld(contoso, "lena@contoso.com")
	waitMailIdle(t)
	if n := e.smtp.Count("lena@contoso.com"); n != 1 {
		t.Errorf("%d codes to the locked address after a flood, want 1", n)
	}
}

// Also: right after a send, an allowed address saw "Sending your code…"
// with a self-refresh while an unlisted or blocked one saw "We sent…": one
// request told them apart. Every state must look the same.
func TestEveryStateLooksTheSameForAllowedAndDenied(t *testing.T) {
	e := newEnv(t)
	e.smtp = startSlowSink(t) // a real code stays "queued" for a second
	e.load(gatewayOptions{})
	type view struct{ send, first, later string }
	look := func(email string) view {
		g := newGuest(t)
		page := g.get(contoso + hostBase + "signin")
		sent := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {email}})
		first := g.get(contoso + hostBase + "verify")
		waitMailIdle(t) // the real code is delivered, the decoy's wait is over
		later := g.get(contoso + hostBase + "verify")
		return view{shape(sent, email), shape(first, email), shape(later, email)}
	}
	// Pairs of equal length, so cookie sizes can be compared too.
	for _, pair := range [][2]string{{"cat@contoso.com", "cat@unlisted.io"}, {"catherine@contoso.com", "c@blocked.contoso.com"}} {
		allowed, denied := look(pair[0]), look(pair[1])
		if allowed != denied {
			t.Errorf("%s and %s look different:\nallowed: %+v\ndenied:  %+v", pair[0], pair[1], allowed, denied)
		}
	}
}

// shape is what an answer shows, with tokens, times and the address blanked:
// status, headers (cookie names and value sizes), body.
func shape(r reply, email string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s\n", r.StatusCode, r.Header.Get("Location"))
	for _, name := range []string{"Content-Type", "Cache-Control", "Refresh", "Content-Security-Policy"} {
		fmt.Fprintf(&b, "%s: %s\n", name, scrub(r.Header.Get(name)))
	}
	for _, c := range r.Cookies() {
		fmt.Fprintf(&b, "cookie %s len %d path %s\n", c.Name, len(c.Value), c.Path)
	}
	b.WriteString(strings.ReplaceAll(scrub(r.body), email, "EMAIL"))
	return b.String()
}

// guessWrong posts n wrong codes to the verify form at base (an origin and
// the endpoints' prefix).
func (g *guest) guessWrong(base, csrf string, n int) {
	for i := 0; i < n; i++ {
		g.post(base+"verify", url.Values{"csrf": {csrf}, "code": {"00000000"}})
	}
}

// Any site can send the guest's browser to the sign-in page (a top-level
// GET carries the Lax cookies): that must not end the sign-in under way,
// so the code the guest is typing in the other tab still works.
func TestCrossSiteSignInPageKeepsTheCodeBeingTyped(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/docs/a", "kim@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "kim@contoso.com", 1, 10*time.Second).Text)
	for _, site := range []string{"cross-site", "same-site"} {
		expectStatus(t, g.get(contoso+hostBase+"signin?rd=%2F", "Sec-Fetch-Site", site, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), http.StatusOK)
	}
	if loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther); loc != "/docs/a" {
		t.Fatalf("the code after another site's visit led to %q, want the signed-in landing /docs/a", loc)
	}
}
