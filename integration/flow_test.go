package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	contoso  = "http://contoso.localhost:9080"
	fabrikam = "http://fabrikam.localhost:9080"
	pathSite = "http://localhost:9080"
	hostBase = "/.email-otp/"
	acmeBase = "/t/acme/.email-otp/"
)

func TestHostTenantSignInLandsOnDeepLinkWithIdentity(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	deep := "/docs/Q3%20report.pdf?version=2&lang=en"

	landed := e.signIn(g, contoso, hostBase, deep, "Alice@Contoso.COM")
	if landed != deep {
		t.Fatalf("after sign-in landed on %q, want the deep link %q", landed, deep)
	}

	mail := e.smtp.Messages()[0]
	if got := mail.To; len(got) != 1 || got[0] != "alice@contoso.com" {
		t.Errorf("mail went to %v, want the lower-cased address", got)
	}
	for _, want := range []string{"contoso.localhost", "/docs/Q3%20report.pdf", "127.0.0.1", "Didn't ask for this code?", "30 minutes"} {
		if !strings.Contains(mail.Text, want) {
			t.Errorf("email text lacks %q:\n%s", want, mail.Text)
		}
	}
	if mail.HTML == "" || !strings.Contains(mail.HTML, codeIn(t, mail.Text)) {
		t.Errorf("email has no HTML part with the code")
	}
	if mail.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", mail.Header.Get("Auto-Submitted"))
	}

	c := g.cookie(contoso+"/", "email_otp_session")
	if c == nil {
		t.Fatal("no session cookie after sign-in")
	}
	seen := g.backendView(contoso+deep,
		"X-Auth-Email", "mallory@evil.com",
		"X_Auth_Email", "mallory@evil.com",
		"x-auth-tenant", "fabrikam.localhost",
		"X-Auth-Method", "none",
		"Cookie", "theme=dark")
	want := map[string]string{
		"X-Auth-Email":  "alice@contoso.com",
		"X-Auth-Tenant": "contoso.localhost",
		"X-Auth-Method": "email-otp",
		// The placeholders, passed on by reverse_proxy's header_up.
		"X-Placeholder-Id":     "alice@contoso.com",
		"X-Placeholder-Email":  "alice@contoso.com",
		"X-Placeholder-Tenant": "contoso.localhost",
	}
	for h, v := range want {
		if got := seen.Headers[h]; len(got) != 1 || got[0] != v {
			t.Errorf("backend saw %s = %v, want exactly [%s]", h, got, v)
		}
	}
	if _, ok := seen.Headers["X_Auth_Email"]; ok {
		t.Errorf("backend saw the spoofed X_Auth_Email header")
	}
	exp, err := time.Parse(time.RFC3339, first(seen.Headers["X-Auth-Session-Expires"]))
	if err != nil || exp.Sub(time.Now()) < 23*time.Hour || exp.Sub(time.Now()) > 24*time.Hour+time.Minute {
		t.Errorf("X-Auth-Session-Expires = %v (%v), want about 24h from now", seen.Headers["X-Auth-Session-Expires"], err)
	}
	cookies := strings.Join(seen.Headers["Cookie"], "; ")
	if strings.Contains(cookies, "email_otp") || !strings.Contains(cookies, "theme=dark") {
		t.Errorf("backend saw cookies %q: want the guest's own cookie and none of the gateway's", cookies)
	}
	if seen.Path != deep {
		t.Errorf("backend saw path %q, want %q", seen.Path, deep)
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func TestSessionCookieAttributes(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	r := e.signInAnswer(g, contoso, hostBase, "/a", "bob@contoso.com")
	var session *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "email_otp_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("verify set no session cookie; Set-Cookie: %v", r.Header["Set-Cookie"])
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Secure {
		t.Errorf("cookie attributes: HttpOnly=%v SameSite=%v Path=%q Secure=%v; want HttpOnly, Lax, /, not Secure on http",
			session.HttpOnly, session.SameSite, session.Path, session.Secure)
	}
	if session.MaxAge < 23*3600 || session.MaxAge > 24*3600 {
		t.Errorf("cookie Max-Age %d, want about 24h", session.MaxAge)
	}
	if len(session.Value) > 4096 {
		t.Errorf("cookie is %d bytes", len(session.Value))
	}
	for _, h := range []string{"Cache-Control", "Content-Security-Policy"} {
		page := g.get(contoso + hostBase + "signin")
		if v := page.Header.Get(h); v == "" || (h == "Cache-Control" && v != "no-store") ||
			(h == "Content-Security-Policy" && !strings.Contains(v, "frame-ancestors 'none'")) {
			t.Errorf("sign-in page %s = %q", h, v)
		}
	}
}

func TestNonBrowserGets401(t *testing.T) {
	start(t, gatewayOptions{})
	g := newGuest(t)
	r := g.get(contoso+"/api/items", "Accept", "application/json")
	expectStatus(t, r, http.StatusUnauthorized)
	if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Email-OTP ") || !strings.Contains(wa, `realm="contoso.localhost"`) {
		t.Errorf("WWW-Authenticate = %q", wa)
	}
	r = g.get(contoso+hostBase+"session", "Accept", "application/json")
	expectStatus(t, r, http.StatusUnauthorized, `"error"`)
}

func TestSessionEndpointDescribesSession(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "carol@contoso.com")
	r := g.get(contoso+hostBase+"session", "Accept", "application/json")
	expectStatus(t, r, http.StatusOK)
	var s struct {
		Email, Tenant string
		Expires       time.Time
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Email != "carol@contoso.com" || s.Tenant != "contoso.localhost" || time.Until(s.Expires) < 23*time.Hour {
		t.Errorf("session JSON = %+v", s)
	}
}

func TestCookieOfOneTenantDoesNotOpenAnother(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "dave@contoso.com")
	c := g.cookie(contoso+"/", "email_otp_session")

	attacker := newGuest(t)
	r := attacker.get(fabrikam+"/secret", "Cookie", c.Name+"="+c.Value)
	expectRedirect(t, r, http.StatusFound)

	// Path tenants: acme's cookie sent to globex.
	e.signIn(g, pathSite, acmeBase, "/t/acme/doc", "dave@contoso.com")
	ac := g.cookie(pathSite+"/t/acme/", "email_otp_session")
	if ac == nil {
		t.Fatal("no acme session cookie")
	}
	r = attacker.get(pathSite+"/t/globex/doc", "Cookie", ac.Name+"="+ac.Value)
	expectRedirect(t, r, http.StatusFound)
	// The same cookie still works where it belongs.
	attacker.backendView(pathSite+"/t/acme/doc", "Cookie", ac.Name+"="+ac.Value)
}

func TestPathTenantFlow(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	landed := e.signIn(g, pathSite, acmeBase, "/t/acme/folder/file.docx?x=1", "erin@sub.partner.org")
	if landed != "/t/acme/folder/file.docx?x=1" {
		t.Fatalf("landed on %q", landed)
	}
	c := g.cookie(pathSite+"/t/acme/x", "email_otp_session")
	if c == nil {
		t.Fatal("no session cookie under /t/acme/")
	}
	if g.cookie(pathSite+"/t/globex/x", "email_otp_session") != nil {
		t.Error("acme's session cookie is sent to /t/globex/: its Path is too wide")
	}
	seen := g.backendView(pathSite + "/t/acme/folder/file.docx?x=1")
	if first(seen.Headers["X-Auth-Tenant"]) != "acme" || first(seen.Headers["X-Auth-Email"]) != "erin@sub.partner.org" {
		t.Errorf("backend identity headers: %v", seen.Headers)
	}
	// globex needs its own sign-in.
	expectRedirect(t, g.get(pathSite+"/t/globex/"), http.StatusFound)
}

func TestLinkWithoutTenantGetsClearPage(t *testing.T) {
	start(t, gatewayOptions{})
	g := newGuest(t)
	for _, p := range []string{"/", "/t/", "/docs/x"} {
		expectStatus(t, g.get(pathSite+p), http.StatusNotFound, "does not say which shared space")
	}
	for _, p := range []string{"/t/..%2f/x", "/t/a%2fb/x", "/t/.hidden/x", "/t/acme//x", "/t/acme/../globex/x"} {
		r := g.get(pathSite + p)
		if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 400 or 404\n%s", p, r.StatusCode, r.body)
		}
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "frank@contoso.com")
	pending := g.cookie(contoso+hostBase, "email_otp_pending")
	code := codeIn(t, e.smtp.Wait(t, "frank@contoso.com", 1, 10*time.Second).Text)
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)

	// Replaying the same code with the pre-sign-in cookie gives no session.
	replay := newGuest(t)
	r := replay.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}},
		"Cookie", pending.Name+"="+pending.Value)
	loc := expectRedirect(t, r, http.StatusSeeOther)
	if !strings.Contains(loc, "signin") || !strings.Contains(loc, "reason=expired") {
		t.Errorf("replayed code redirected to %q, want the sign-in page with reason=expired", loc)
	}
	for _, c := range r.Cookies() {
		if c.Name == "email_otp_session" {
			t.Errorf("replayed code set a session cookie")
		}
	}
}

func TestFiveWrongCodesKillTheCode(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "gina@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "gina@contoso.com", 1, 10*time.Second).Text)
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	for left := 4; left >= 1; left-- {
		r := g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {wrong}})
		expectStatus(t, r, http.StatusUnprocessableEntity, "not right", map[bool]string{true: "1 try left", false: "tries left"}[left == 1])
	}
	loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {wrong}}), http.StatusSeeOther)
	if !strings.Contains(loc, "reason=locked") {
		t.Errorf("fifth wrong code redirected to %q, want reason=locked", loc)
	}
	r := g.get(contoso + loc)
	expectStatus(t, r, http.StatusOK, `<p class="notice warn" role="status">Too many wrong codes`)
	// The right code no longer works.
	r = g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}})
	expectRedirect(t, r, http.StatusSeeOther)
	expectRedirect(t, g.get(contoso+"/x"), http.StatusFound)
}

func TestMalformedCodeUsesNoTry(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "hank@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "hank@contoso.com", 1, 10*time.Second).Text)
	for _, typed := range []string{"abc", "１２３４５６７８", "123"} {
		expectStatus(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {typed}}),
			http.StatusUnprocessableEntity, "8-digit code")
	}
	spaced := code[:4] + " " + code[4:]
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {spaced}}), http.StatusSeeOther)
	g.backendView(contoso + "/x")
}

func TestNewCodeSupersedesOlder(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "ivy@contoso.com")
	old := codeIn(t, e.smtp.Wait(t, "ivy@contoso.com", 1, 10*time.Second).Text)
	oldPending := g.cookie(contoso+hostBase, "email_otp_pending")
	// "Send a new code" from the verify page.
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{"csrf": {csrf}, "email": {"ivy@contoso.com"}, "rd": {"/x"}}), http.StatusSeeOther)
	fresh := codeIn(t, e.smtp.Wait(t, "ivy@contoso.com", 2, 10*time.Second).Text)
	if old == fresh {
		t.Logf("two random codes collided (p = 1e-8); nothing to compare")
		return
	}
	// Against the old challenge (the browser state from before the resend)
	// the old code finds nothing live.
	r := newGuest(t).post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {old}},
		"Cookie", oldPending.Name+"="+oldPending.Value)
	loc := expectRedirect(t, r, http.StatusSeeOther)
	if !strings.Contains(loc, "reason=expired") {
		t.Errorf("old code after a new one: redirected to %q, want reason=expired", loc)
	}
	// Against the new challenge it is just wrong; the new code works.
	expectStatus(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {old}}), http.StatusUnprocessableEntity, "not right")
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {fresh}}), http.StatusSeeOther)
	g.backendView(contoso + "/x")
}

func TestBlockedAndUnlistedGetNoMailButTheSamePage(t *testing.T) {
	e := start(t, gatewayOptions{})
	type outcome struct {
		status   int
		location string
		cookies  []string
	}
	try := func(email string) outcome {
		g := newGuest(t)
		page := g.get(contoso + hostBase + "signin?rd=/x")
		csrf := formValue(t, page.body, "csrf")
		r := g.post(contoso+hostBase+"send", url.Values{"csrf": {csrf}, "rd": {"/x"}, "email": {email}})
		var names []string
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		verify := g.get(contoso + hostBase + "verify")
		expectStatus(t, verify, http.StatusOK, `name="code"`)
		return outcome{r.StatusCode, r.Header.Get("Location"), names}
	}
	allowed := try("jack@contoso.com")
	e.smtp.Wait(t, "jack@contoso.com", 1, 10*time.Second)
	for _, denied := range []string{"kim@blocked.contoso.com", "lee@unlisted.example", "mallory@evilcontoso.com", "x@partner.org"} {
		got := try(denied)
		if got.status != allowed.status || got.location != allowed.location || strings.Join(got.cookies, ",") != strings.Join(allowed.cookies, ",") {
			t.Errorf("%s: %+v, allowed address: %+v: the two must look alike", denied, got, allowed)
		}
	}
	waitMailIdle(t)
	for _, m := range e.smtp.Messages() {
		if m.To[0] != "jack@contoso.com" {
			t.Errorf("mail was sent to %v, who may not sign in", m.To)
		}
	}
}

func TestOpenRedirectAttemptsLandOnTenantRoot(t *testing.T) {
	e := start(t, gatewayOptions{})
	hostile := []string{
		"//evil.example/x", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example",
		"/%5Cevil.example", "javascript:alert(1)", "/x\r\nSet-Cookie: a=b", "evil.example",
		"/.email-otp/signout", "/a/../../etc",
	}
	for _, rd := range hostile {
		g := newGuest(t)
		page := g.get(contoso + hostBase + "signin?rd=" + url.QueryEscape(rd))
		if got := formValue(t, page.body, "rd"); got != "/" {
			t.Errorf("rd=%q: the sign-in form carries rd %q, want /", rd, got)
		}
	}
	// Posted directly, past the form, and through a whole sign-in.
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	csrf := formValue(t, page.body, "csrf")
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{"csrf": {csrf}, "rd": {"//evil.example/"}, "email": {"max@contoso.com"}}), http.StatusSeeOther)
	vpage := g.get(contoso + hostBase + "verify")
	code := codeIn(t, e.smtp.Wait(t, "max@contoso.com", 1, 10*time.Second).Text)
	loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {formValue(t, vpage.body, "csrf")}, "code": {code}}), http.StatusSeeOther)
	if loc != "/" {
		t.Errorf("landed on %q, want /", loc)
	}
	// A path tenant's rd can't point into another tenant.
	g = newGuest(t)
	page = g.get(pathSite + acmeBase + "signin?rd=" + url.QueryEscape("/t/globex/doc"))
	if got := formValue(t, page.body, "rd"); got != "/t/acme/" {
		t.Errorf("acme sign-in keeps rd %q pointing at another tenant", got)
	}
}

func TestFormsNeedCSRFTokenAndSameOrigin(t *testing.T) {
	start(t, gatewayOptions{})
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	csrf := formValue(t, page.body, "csrf")
	expectStatus(t, g.post(contoso+hostBase+"send", url.Values{"email": {"a@contoso.com"}, "csrf": {"forged"}}), http.StatusForbidden)
	expectStatus(t, g.post(contoso+hostBase+"send", url.Values{"email": {"a@contoso.com"}, "csrf": {csrf}},
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), http.StatusForbidden)
	// Another browser's token is useless.
	other := newGuest(t)
	otherPage := other.get(contoso + hostBase + "signin")
	expectStatus(t, g.post(contoso+hostBase+"send", url.Values{"email": {"a@contoso.com"}, "csrf": {formValue(t, otherPage.body, "csrf")}}), http.StatusForbidden)
	// Two addresses in one form are refused, not fanned out.
	expectStatus(t, g.post(contoso+hostBase+"send", url.Values{"email": {"a@contoso.com", "b@contoso.com"}, "csrf": {csrf}}), http.StatusBadRequest)
	// GET never sends or verifies.
	expectStatus(t, g.get(contoso+hostBase+"send?email=a@contoso.com"), http.StatusMethodNotAllowed)
}

func TestInvalidAddressIsExplainedNextToTheField(t *testing.T) {
	start(t, gatewayOptions{})
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	csrf := formValue(t, page.body, "csrf")
	for _, bad := range []string{"not-an-address", "Alice <alice@contoso.com>", "a@b@contoso.com", "alice@contoso.com\r\nBcc: x@evil.example"} {
		r := g.post(contoso+hostBase+"send", url.Values{"email": {bad}, "csrf": {csrf}})
		expectStatus(t, r, http.StatusUnprocessableEntity, `id="email-error"`, `aria-invalid="true"`)
	}
}

func TestSignOutRevokesTheSession(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "nina@contoso.com")
	stolen := g.cookie(contoso+"/", "email_otp_session")
	page := g.get(contoso + hostBase + "signout")
	expectStatus(t, page, http.StatusOK, "nina@contoso.com")
	// GET alone signs nobody out.
	g.backendView(contoso + "/still-in")
	expectStatus(t, g.post(contoso+hostBase+"signout", url.Values{"csrf": {formValue(t, page.body, "csrf")}}), http.StatusOK, "signed out")
	if g.cookie(contoso+"/", "email_otp_session") != nil {
		t.Error("sign-out left the session cookie in the browser")
	}
	// A copy of the cookie kept elsewhere is dead too.
	expectRedirect(t, newGuest(t).get(contoso+"/x", "Cookie", stolen.Name+"="+stolen.Value), http.StatusFound)
	// The sign-in page remembers the address for next time.
	signin := g.get(contoso + hostBase + "signin")
	if formValue(t, signin.body, "email") != "nina@contoso.com" {
		t.Error("the sign-in page does not pre-fill the last address")
	}
}

func TestSignOutNeedsItsToken(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "otto@contoso.com")
	expectStatus(t, g.post(contoso+hostBase+"signout", url.Values{"csrf": {"forged"}}), http.StatusForbidden)
	g.backendView(contoso + "/still-in")
}

func TestTamperedCookiesMeanNoSession(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "pia@contoso.com")
	good := g.cookie(contoso+"/", "email_otp_session").Value
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 1
	for name, v := range map[string]string{
		"flipped":   string(flipped),
		"truncated": good[:len(good)/2],
		"garbage":   "not-a-cookie",
		"oversized": strings.Repeat("A", 5000),
	} {
		r := newGuest(t).get(contoso+"/x", "Cookie", "email_otp_session="+v)
		if r.StatusCode != http.StatusFound {
			t.Errorf("%s cookie: status %d, want 302", name, r.StatusCode)
		}
	}
	// A bad copy before a good one does not hide the good one.
	newGuest(t).backendView(contoso+"/x", "Cookie", "email_otp_session=garbage; email_otp_session="+good)
}
