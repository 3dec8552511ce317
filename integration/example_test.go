package integration

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/otpgate/caddy-email-otp/integration/oidcprovider"
)

// TestCaddyfileExampleDemo loads Caddyfile.example, as `./xcaddy.sh run` does
// (ports moved for the test), and walks a guest through it with the dev
// mailer's outbox: the demo works on the embedded defaults.
func TestCaddyfileExampleDemo(t *testing.T) {
	raw, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	// The demo's identity provider, as ./xcaddy.sh run starts it (on a free port here).
	idp := oidcprovider.Start(t, "demo-gateway", "demo-secret", []string{contoso + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "ada", Email: "ada@idp.example", EmailVerified: true})
	cfg := strings.NewReplacer(
		"http://localhost:9998", idp.Issuer,
		"http_port 8080", "http_port 9080\n\tadmin localhost:2999\n\thttps_port 9443\n\tgrace_period 1ns\n\tstorage file_system "+storageDir(t),
		":8080", ":9080",
		":9000", ":9081",
	).Replace(string(raw))
	caddytest.NewTester(t).InitServer(cfg, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	settle(t)
	g := newGuest(t)
	expectStatus(t, g.get(pathSite+"/"), http.StatusOK, "caddy-email-otp demo", "contoso.localhost")

	for i, tc := range []struct{ origin, base, deep, tenant string }{
		{contoso, hostBase, "/docs/welcome?from=demo", "contoso.localhost"},
		{pathSite, acmeBase, "/t/acme/docs/welcome", "acme"},
	} {
		csrf := g.requestCode(tc.origin, tc.base, tc.deep, "guest@example.org")
		// Delivery starts just after the answer: wait for this code's mail.
		var outbox reply
		for try := 0; try < 200; try++ {
			if outbox = g.get(pathSite + "/.email-otp/outbox"); strings.Count(outbox.body, "<article>") > i {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		expectStatus(t, outbox, http.StatusOK, "guest@example.org")
		code := codeRE.FindStringSubmatch(htmlUnescape(outbox.body))
		if code == nil {
			t.Fatalf("no code in the outbox:\n%s", outbox.body)
		}
		landed := expectRedirect(t, g.post(tc.origin+tc.base+"verify", url.Values{"csrf": {csrf}, "code": {code[1]}}), http.StatusSeeOther)
		if landed != tc.deep {
			t.Fatalf("landed on %q, want %q", landed, tc.deep)
		}
		doc := g.get(tc.origin + tc.deep)
		expectStatus(t, doc, http.StatusOK, "A shared document", "<td>guest@example.org</td>", "<td>"+tc.tenant+"</td>", "<td>email-otp</td>")
	}
	// The demo's other way in: ada@idp.example signs in at the provider.
	ada := newGuest(t)
	landed := expectRedirect(t, viaProvider(t, ada, contoso, hostBase, "/docs/welcome", "ada@idp.example", "ada"), http.StatusSeeOther)
	expectStatus(t, ada.get(contoso+landed), http.StatusOK, "<td>ada@idp.example</td>", "<td>oidc:idp-example</td>")

	// A blocked address of the demo gets the same answer and no mail.
	page := g.get(contoso + hostBase + "signin")
	r := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"x@mailinator.com"}})
	expectRedirect(t, r, http.StatusSeeOther)
	if strings.Contains(g.get(pathSite+"/.email-otp/outbox").body, "x@mailinator.com") {
		t.Error("the demo mailed a blocked address")
	}
}
