package integration

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// trustLoopbackProxy makes Caddy trust a proxy on this machine, without
// trusted_proxies_strict (Caddy's default), and logs to file.
func trustLoopbackProxy(logFile string) string {
	return "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}\n\tlog {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t}"
}

// Behind a proxy that ends TLS (trusted, X-Forwarded-Proto https) the
// browser is on HTTPS: the cookies are __Host-/__Secure- and Secure, which
// a sibling host cannot toss, and links in mail are https.
func TestBehindATLSProxyCookiesAreHostBound(t *testing.T) {
	e := start(t, gatewayOptions{global: trustLoopbackProxy(filepath.Join(t.TempDir(), "caddy.log"))})
	r := newGuest(t).get(contoso+hostBase+"signin", "X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7")
	expectStatus(t, r, http.StatusOK)
	var got *http.Cookie
	for _, c := range r.Cookies() {
		if strings.HasSuffix(c.Name, "email_otp_pending") {
			got = c
		}
	}
	if got == nil || got.Name != "__Secure-email_otp_pending" || !got.Secure {
		t.Fatalf("behind a TLS proxy the pending cookie is %+v, want __Secure-email_otp_pending, Secure", got)
	}
	form := url.Values{"csrf": {formValue(t, r.body, "csrf")}, "email": {"ivy@contoso.com"}, "rd": {"/x"}}
	send := newGuest(t).post(contoso+hostBase+"send", form, "X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7",
		"Cookie", got.Name+"="+got.Value, "Origin", "https://contoso.localhost:9080")
	expectRedirect(t, send, http.StatusSeeOther)
	mail := e.smtp.Wait(t, "ivy@contoso.com", 1, 10*time.Second)
	if !strings.Contains(mail.Text, "https://contoso.localhost:9080/.email-otp/notme?t=") {
		t.Errorf("the email's link is not the https one the guest uses:\n%s", mail.Text)
	}
}

// "From this machine" is the connection's own peer, never a header: a
// client behind the trusted proxy writing X-Forwarded-For: 127.0.0.1 (which
// Caddy without strict mode takes as the client IP) sees neither the health
// check nor the dev outbox, and the server is warned about the loose mode.
func TestLoopbackOnlyMeansThisMachine(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(gatewayOptions{mailer: "mailer dev", global: trustLoopbackProxy(logFile)})
	forged := []string{"X-Forwarded-For", "127.0.0.1, 198.51.100.7"}
	for _, path := range []string{hostBase + "healthz", "/.email-otp/outbox"} {
		origin := contoso
		if strings.HasSuffix(path, "outbox") {
			origin = pathSite
		}
		expectStatus(t, newGuest(t).get(origin+path, forged...), http.StatusNotFound)
		expectStatus(t, newGuest(t).get(origin+path), http.StatusOK)
	}
	g := newGuest(t)
	page := g.get(contoso+hostBase+"signin", forged...)
	form := url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"ivy@contoso.com"}, "rd": {"/x"}}
	expectRedirect(t, g.post(contoso+hostBase+"send", form, forged...), http.StatusSeeOther)
	waitForLog(t, logFile, "without trusted_proxies_strict")
}

// Host tenants on plain HTTP are not kept apart from each other (a page on
// one host can set cookies for the parent domain that the others accept):
// the load says so, as the threat model does.
func TestPlainHTTPHostTenantsWarnAtLoad(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	cfg := e.siblingSites("", startBackend(t))
	cfg = strings.Replace(cfg, "\tstorage file_system", "\tlog {\n\t\toutput file "+logFile+"\n\t\tformat json\n\t}\n\tstorage file_system", 1)
	e.load(cfg)
	waitForLog(t, logFile, "host tenants on plain HTTP are not kept apart")
}

// hsts puts Strict-Transport-Security on the gateway's answers over HTTPS
// (here: behind a TLS-ending trusted proxy) and never on plain HTTP, where
// browsers ignore it and it would only mislead.
func TestHSTSOnTheGatewaysHTTPSAnswers(t *testing.T) {
	start(t, gatewayOptions{extra: "hsts 365d", global: trustLoopbackProxy(filepath.Join(t.TempDir(), "caddy.log"))})
	for _, path := range []string{hostBase + "signin", "/report"} {
		r := newGuest(t).get(contoso+path, "X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7")
		if got := r.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s over HTTPS: Strict-Transport-Security %q, want max-age=31536000", path, got)
		}
		if got := newGuest(t).get(contoso + path).Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s over plain HTTP: Strict-Transport-Security %q", path, got)
		}
	}
}

// The redirect that sets the session cookie, like every answer that sets a
// gateway cookie, is never kept by a cache.
func TestAnswersThatSetCookiesAreNotStored(t *testing.T) {
	e := start(t, gatewayOptions{})
	r := e.signInAnswer(newGuest(t), contoso, hostBase, "/report", "nia@contoso.com")
	if len(r.Cookies()) == 0 || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the redirect that signs in: %d cookies set, Cache-Control %q, want no-store", len(r.Cookies()), r.Header.Get("Cache-Control"))
	}
}
