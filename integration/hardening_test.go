package integration

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestConfiguredKeysRotateWithoutSigningAnyoneOut(t *testing.T) {
	oldKey, newKey := newSecret(), newSecret()
	t.Setenv("EMAIL_OTP_TEST_KEY", oldKey)
	e := start(t, gatewayOptions{extra: "keys {env.EMAIL_OTP_TEST_KEY}"})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "walt@contoso.com")
	c := g.cookie(contoso+"/", "email_otp_session")
	replay := func() reply {
		return newGuest(t).get(contoso+"/x", "Cookie", c.Name+"="+c.Value)
	}

	e.load(gatewayOptions{extra: "keys " + newKey + " {env.EMAIL_OTP_TEST_KEY}"})
	expectStatus(t, replay(), http.StatusOK)
	// New sessions are signed with the newest key: they survive dropping the old one.
	fresh := newGuest(t)
	e.signIn(fresh, contoso, hostBase, "/", "xena@contoso.com")

	e.load(gatewayOptions{extra: "keys " + newKey})
	expectRedirect(t, replay(), http.StatusFound)
	fresh.backendView(contoso + "/x")
}

func TestSecureCookiesOnHTTPS(t *testing.T) {
	e := newEnv(t)
	backend := strings.TrimPrefix(e.backend.URL, "http://")
	cfg := globalOptions(e.storage, "local_certs", "skip_install_trust") + fmt.Sprintf(`https://secure.localhost:9443 {
	tls internal
	handle /t/* {
		email_otp {
			tenant path /t/
			tenants acme
			allow *
			mailer dev
		}
		reverse_proxy %[1]s
	}
	handle {
		email_otp {
			tenant host
			allow *
			mailer dev
		}
		reverse_proxy %[1]s
	}
}
`, backend)
	e.load(cfg)
	origin := "https://secure.localhost:9443"
	// Caddy issues the internal certificate in the background.
	client := newGuest(t).client
	for i := 0; ; i++ {
		resp, err := client.Get(origin + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 50 {
			t.Fatalf("no HTTPS after 10s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct{ base, cookie, path string }{
		{hostBase, "__Secure-email_otp_pending", "/.email-otp/"},
		{acmeBase, "__Secure-email_otp_pending", "/t/acme/.email-otp/"},
	} {
		r := newGuest(t).get(origin + tc.base + "signin")
		expectStatus(t, r, http.StatusOK)
		var got *http.Cookie
		for _, c := range r.Cookies() {
			got = c
		}
		if got == nil || got.Name != tc.cookie || !got.Secure || got.Path != tc.path || !got.HttpOnly {
			t.Errorf("%s: cookie %+v, want %s, Secure, HttpOnly, Path=%s", tc.base, got, tc.cookie, tc.path)
		}
	}
}

func TestLogsNameEventsButNeverCodesOrCookies(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	e := start(t, gatewayOptions{global: "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t}"})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "yara@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "yara@contoso.com", 1, 10*time.Second).Text)
	expectStatus(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {wrongCode(code)}}), http.StatusUnprocessableEntity)
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	g.backendView(contoso + "/x")
	expectStatus(t, g.signOut(contoso, hostBase), http.StatusOK)

	logs := waitForLog(t, logFile, `"msg":"signed out"`)
	for _, event := range []string{`"msg":"code queued"`, `"msg":"code email delivered"`, `"msg":"verify failed: wrong code"`, `"msg":"session issued"`, `"msg":"signed out"`} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %s line in the log", event)
		}
	}
	if !strings.Contains(logs, `"email":"yara@contoso.com"`) || !strings.Contains(logs, `"tenant":"contoso.localhost"`) {
		t.Error("event lines lack the address or tenant")
	}
	secrets := map[string]string{"the code": code, "the CSRF token": csrf}
	if c := g.cookie(contoso+hostBase, "email_otp_pending"); c != nil {
		secrets["the pending cookie"] = c.Value
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("%s reached the log", what)
		}
	}
}

func TestMaskedAddressesInLogs(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	e := start(t, gatewayOptions{extra: "mask_addresses", global: "log {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t}"})
	e.signIn(newGuest(t), contoso, hostBase, "/", "zelda@contoso.com")
	logs := waitForLog(t, logFile, `"msg":"session issued"`)
	if strings.Contains(logs, "zelda@contoso.com") || !strings.Contains(logs, `"email":"z***@contoso.com"`) {
		t.Errorf("addresses are not masked:\n%s", grepLines(logs, "email"))
	}
}

// waitForLog returns the log file once it holds want (the last event a test
// caused), or fails after 10s: Caddy writes its log asynchronously.
func waitForLog(t *testing.T, file, want string) string {
	t.Helper()
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw, _ := os.ReadFile(file)
		if logs = string(raw); strings.Contains(logs, want) {
			return logs
		}
	}
	t.Fatalf("no %s in the log within 10s:\n%s", want, logs)
	return ""
}

// The pending cookie (kept 30 days to pre-fill the address) is scoped to the
// gateway's own pages: it does not ride along on every request for a
// document.
func TestPendingCookieStaysOnTheGatewaysPages(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/x", "pia@contoso.com")
	doc, _ := url.Parse(contoso + "/docs/a.pdf")
	for _, c := range g.jar.Cookies(doc) {
		if c.Name == "email_otp_pending" {
			t.Errorf("a document request carries the pending cookie")
		}
	}
	if g.cookie(contoso+hostBase, "email_otp_pending") == nil {
		t.Fatal("the gateway's pages lost the pending cookie")
	}
}
