package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// strangerTenant is a path segment an attacker writes into a link so that
// the code email, from the operator's real sender, reads as a scam.
const strangerTenant = "PayPal-account-LOCKED.call-1-800-555-0199-now"

// A tenant the config does not declare is a plain 404: no sign-in page, no
// cookie, no code, no mail.
func TestUndeclaredPathTenantIsNotFound(t *testing.T) {
	e := start(t, gatewayOptions{})
	base := "/t/" + strangerTenant + "/.email-otp/"
	g := newGuest(t)
	for _, r := range []reply{
		g.get(pathSite + "/t/" + strangerTenant + "/docs/a.pdf"),
		g.get(pathSite + base + "signin"),
		g.post(pathSite+base+"send", url.Values{"csrf": {"x"}, "email": {"victim@contoso.com"}, "rd": {"/"}}),
	} {
		expectStatus(t, r, http.StatusNotFound)
		if strings.Contains(r.body, "PayPal") || len(r.Header["Set-Cookie"]) > 0 {
			t.Errorf("%s %s: the answer names the tenant or sets a cookie: %q\n%s", r.Request.Method, r.Request.URL, r.Header["Set-Cookie"], r.body)
		}
	}
	// A declared one next to it still signs in, and nothing was mailed for
	// the stranger's.
	e.signIn(g, pathSite, acmeBase, "/t/acme/x", "victim@contoso.com")
	waitMailIdle(t)
	if n := e.smtp.Count("victim@contoso.com"); n != 1 {
		t.Errorf("victim got %d mails, want only the one asked for on acme", n)
	}
}

// A gateway that must say which tenants exist is refused at load, with the
// option to use: path tenants with none declared, host tenants on a
// catch-all address, and patterns without the name their pages use.
func TestTenantsMustBeDeclared(t *testing.T) {
	for _, tc := range []struct{ site, lines, want string }{
		{"http://localhost:9080", "tenant path /t/\n\t\tallow *", "tenant path: list the tenants this gateway serves"},
		{":9080", "tenant host\n\t\tallow *", "tenant host: this site's addresses name no host"},
		{"http://*.localhost:9080", "tenant host\n\t\tallow *", "tenant host: this site's addresses name no host"},
		{"http://localhost:9080", "tenant path /t/\n\t\ttenants team-*\n\t\tallow *", "set display_name"},
		// A right-to-left override would make the name in pages and mail read backwards.
		{"http://localhost:9080", "tenant path /t/\n\t\ttenants acme\n\t\tdisplay_name acme \"Contoso \u202efdp.exe\"\n\t\tallow *", "bidirectional override"},
		{"http://contoso.localhost:9080", "tenant host\n\t\tdisplay_name \"Contoso\u2066 Docs\"\n\t\tallow *", "bidirectional override"},
	} {
		cfg := globalOptions(storageDir(t)) + tc.site + " {\n\temail_otp {\n\t\t" + tc.lines + "\n\t\tmailer dev\n\t}\n\trespond ok\n}\n"
		caddytest.AssertLoadError(t, cfg, "caddyfile", tc.want)
	}
}

// Where a gateway answers tenants a pattern admits (here any tenant, on a
// site that answers any Host), the code email's words come from the
// config: the display_name, no link and no one-time-code line, so neither
// the path segment nor the Host a stranger chose reaches the inbox.
func TestPatternTenantsKeepStrangersTextOutOfMail(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.site(":9080", "tenant path /t/\n\t\ttenants *\n\t\tdisplay_name \"Shared documents\"\n\t\tallow *@contoso.com", ""))
	base := "/t/" + strangerTenant + "/.email-otp/"
	sendWithHost(t, "paypal-security.example:9080", base, "victim@contoso.com")
	mail := e.smtp.Wait(t, "victim@contoso.com", 1, 10*time.Second)
	subject := decodeHeader(mail.Header.Get("Subject"))
	for _, part := range []string{subject, mail.Text, mail.HTML} {
		low := strings.ToLower(part)
		if strings.Contains(low, "paypal") || strings.Contains(low, "1-800") {
			t.Errorf("the stranger's words are in the email:\n%s", part)
		}
	}
	if !strings.Contains(subject, "Shared documents") {
		t.Errorf("subject %q does not name the configured display_name", subject)
	}
	if strings.Contains(mail.Text, "notme") || strings.Contains(mail.Text, "\n@") {
		t.Errorf("a link or a one-time-code line in the email of a pattern tenant:\n%s", mail.Text)
	}
}
