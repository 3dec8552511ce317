package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
)

func TestExpiredCodeIsRefused(t *testing.T) {
	e := start(t, gatewayOptions{extra: "code_ttl 2s"})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "quinn@contoso.com")
	expires := time.Now().Add(2 * time.Second) // no earlier than the code's own end
	mail := e.smtp.Wait(t, "quinn@contoso.com", 1, 10*time.Second)
	if !strings.Contains(mail.Text, "2 seconds") {
		t.Errorf("email does not say how long the code lasts:\n%s", mail.Text)
	}
	waitPast(expires)
	loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {codeIn(t, mail.Text)}}), http.StatusSeeOther)
	if !strings.Contains(loc, "reason=expired") || !strings.Contains(loc, "rd=%2Fx") {
		t.Errorf("expired code redirected to %q, want sign-in with reason=expired keeping rd", loc)
	}
	expectRedirect(t, g.get(contoso+"/x"), http.StatusFound)
}

func TestExpiredSessionSendsGuestBackToTheSameLinkWithAddressFilled(t *testing.T) {
	e := start(t, gatewayOptions{extra: "session_ttl 2s"})
	g := newGuest(t)
	deep := "/t/acme/reports/2026.xlsx?sheet=3"
	e.signIn(g, pathSite, acmeBase, deep, "rita@contoso.com")
	expires := time.Now().Add(2 * time.Second)
	kept := g.cookie(pathSite+"/t/acme/", "email_otp_session")
	g.backendView(pathSite + deep)
	waitPast(expires)

	// The server enforces expiry even for a client that keeps the cookie.
	expectRedirect(t, newGuest(t).get(pathSite+deep, "Cookie", kept.Name+"="+kept.Value), http.StatusFound)

	loc := expectRedirect(t, g.get(pathSite+deep), http.StatusFound)
	if loc != acmeBase+"signin?rd="+url.QueryEscape(deep) {
		t.Fatalf("expired session redirected to %q", loc)
	}
	page := g.get(pathSite + loc)
	if got := formValue(t, page.body, "email"); got != "rita@contoso.com" {
		t.Errorf("sign-in after expiry pre-fills %q, want the guest's address", got)
	}
	if landed := e.signIn(g, pathSite, acmeBase, deep, "rita@contoso.com"); landed != deep {
		t.Errorf("second sign-in landed on %q, want %q", landed, deep)
	}
}

// A restart of Caddy loses the memory store (pending codes, revocations) but
// not the keys, which live in Caddy's storage: sessions stay valid. Loading a
// config without the gateway drops every pooled value, as a new process would
// start without them; loading the gateway again reads the keys from storage.
func TestSessionsSurviveRestart(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "sam@contoso.com")
	pendingGuest := newGuest(t)
	csrf := pendingGuest.requestCode(contoso, hostBase, "/", "tom@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "tom@contoso.com", 1, 10*time.Second).Text)

	e.load(e.bare())
	expectStatus(t, newGuest(t).get(pathSite+"/"), http.StatusServiceUnavailable, "maintenance")
	e.load(gatewayOptions{})

	g.backendView(contoso + "/after-restart")
	// The pending code lived in memory: it is gone, as after a real restart.
	loc := expectRedirect(t, pendingGuest.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if !strings.Contains(loc, "reason=expired") {
		t.Errorf("pending code after restart: redirected to %q, want reason=expired", loc)
	}
}

func TestReloadKeepsPendingCodesAndRevocations(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "uma@contoso.com")
	stolen := g.cookie(contoso+"/", "email_otp_session")
	expectStatus(t, g.signOut(contoso, hostBase), http.StatusOK, "signed out")
	csrf := g.requestCode(contoso, hostBase, "/", "uma@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "uma@contoso.com", 2, 10*time.Second).Text)

	e.load(gatewayOptions{extra: "max_attempts 4"}) // a changed config: a real reload

	expectRedirect(t, newGuest(t).get(contoso+"/x", "Cookie", stolen.Name+"="+stolen.Value), http.StatusFound)
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	g.backendView(contoso + "/x")
}

func TestDevOutboxShowsCodesToLoopbackOnly(t *testing.T) {
	start(t, gatewayOptions{mailer: "mailer dev", global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"})
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin?rd=/x")
	csrf := formValue(t, page.body, "csrf")
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{"csrf": {csrf}, "rd": {"/x"}, "email": {"vic@contoso.com"}}), http.StatusSeeOther)

	outbox := g.waitForPage(contoso+hostBase+"outbox", "vic@contoso.com")
	expectStatus(t, outbox, http.StatusOK, "vic@contoso.com", "Your sign-in code for contoso.localhost")
	code := codeRE.FindStringSubmatch(htmlUnescape(outbox.body))
	if code == nil {
		t.Fatalf("no code on the outbox page:\n%s", outbox.body)
	}
	expectStatus(t, g.get(pathSite+"/.email-otp/outbox"), http.StatusOK, "vic@contoso.com")
	// A client that is not on loopback (Caddy's client IP, through a trusted proxy) sees nothing.
	expectStatus(t, g.get(contoso+hostBase+"outbox", "X-Forwarded-For", "203.0.113.7"), http.StatusNotFound)

	vpage := g.get(contoso + hostBase + "verify")
	landed := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {formValue(t, vpage.body, "csrf")}, "code": {code[1]}}), http.StatusSeeOther)
	if landed != "/x" {
		t.Errorf("landed on %q", landed)
	}
}

func TestOutboxDoesNotExistWithSMTP(t *testing.T) {
	start(t, gatewayOptions{})
	expectStatus(t, newGuest(t).get(contoso+hostBase+"outbox"), http.StatusNotFound)
}

// The session cookie's compact form: small on every request, and the only
// form that opens: the gateway's own keys sealing a session in securecookie's
// form (the pending cookie's) make no session.
func TestSessionCookieHasOneCompactForm(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "ava@contoso.com")
	compact := g.cookie(contoso+"/", "email_otp_session")
	if len(compact.Value) > 96 {
		t.Errorf("the session cookie's value is %d characters; its content needs about 90", len(compact.Value))
	}

	raw, err := os.ReadFile(filepath.Join(e.storage, "email_otp", "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stored struct{ Secrets []string }
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	for _, s := range stored.Secrets {
		b, err := flow.DecodeSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, b)
	}
	keys, err := flow.NewKeys(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tenant := directory.TenantKey("", "host", "contoso.localhost")
	old := flow.Session{ID: flow.RandomToken(), Tenant: tenant, Email: "ava@contoso.com", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	sealed, err := keys.SessionSealer(1).SealSession("email_otp_session", tenant, old)
	if err != nil {
		t.Fatal(err)
	}
	if seen := newGuest(t).backendView(contoso+"/doc", "Cookie", "email_otp_session="+sealed); http.Header(seen.Headers).Get("X-Auth-Email") != "ava@contoso.com" {
		t.Errorf("a session sealed with the stored keys: the backend saw %v", seen.Headers)
	}
	tampered := sealed[:len(sealed)-4] + "AAAA"
	expectRedirect(t, newGuest(t).get(contoso+"/doc", "Cookie", "email_otp_session="+tampered), http.StatusFound)
	otherForm, err := keys.Sealer("session").Seal(flow.SealName("email_otp_session", tenant), old)
	if err != nil {
		t.Fatal(err)
	}
	expectRedirect(t, newGuest(t).get(contoso+"/doc", "Cookie", "email_otp_session="+otherForm), http.StatusFound)
}
