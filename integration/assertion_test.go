package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/otpgate/caddy-email-otp/examples/verifier"
)

// The backend gets a signed assertion with every signed-in request and
// checks it, with the example verifier, against the keys the gateway
// publishes: for a host tenant and a path tenant, each with its own issuer.
func TestBackendVerifiesTheAssertion(t *testing.T) {
	e := start(t, gatewayOptions{extra: "assertion {\n\t\t\taudience reports-app\n\t\t}"})
	for _, tc := range []struct{ origin, base, deep, issuer, tenant string }{
		{contoso, hostBase, "/docs/a", contoso + "/", "contoso.localhost"},
		{pathSite, acmeBase, "/t/acme/docs/a", pathSite + "/t/acme/", "acme"},
	} {
		g := newGuest(t)
		e.signIn(g, tc.origin, tc.base, tc.deep, "ann@contoso.com")
		// A client's own copy never reaches the backend.
		seen := g.backendView(tc.origin+tc.deep, "X-Auth-Assertion", "forged", "X_Auth_Assertion", "forged")
		token := seen.Headers["X-Auth-Assertion"]
		if len(token) != 1 || token[0] == "forged" || seen.Headers["X_auth_assertion"] != nil {
			t.Fatalf("%s: the backend got %q", tc.tenant, token)
		}
		if again := g.backendView(tc.origin + tc.deep).Headers["X-Auth-Assertion"]; len(again) != 1 || again[0] != token[0] {
			t.Errorf("%s: a second request got another assertion (signed again?)", tc.tenant)
		}

		jwks := g.get(tc.origin + tc.base + "jwks.json")
		expectStatus(t, jwks, http.StatusOK, `"alg":"ES256"`)
		if jwks.Header.Get("Cache-Control") != "public, max-age=300" || strings.Contains(jwks.body, `"d":`) {
			t.Errorf("%s: jwks %q %s", tc.tenant, jwks.Header.Get("Cache-Control"), jwks.body)
		}
		v := &verifier.Verifier{JWKSURL: tc.origin + tc.base + "jwks.json", Issuer: tc.issuer, Audience: "reports-app", Tenant: tc.tenant, Client: newGuest(t).client}
		id, err := v.Verify(context.Background(), token[0])
		if err != nil || id.Email != "ann@contoso.com" || id.Tenant != tc.tenant || id.Status != "redeemed" {
			t.Errorf("%s: verified %+v, %v", tc.tenant, id, err)
		}
		// Another tenant's backend refuses it.
		other := &verifier.Verifier{JWKSURL: tc.origin + tc.base + "jwks.json", Issuer: tc.issuer, Audience: "reports-app", Tenant: "globex", Client: newGuest(t).client}
		if _, err := other.Verify(context.Background(), token[0]); err == nil {
			t.Errorf("%s: another tenant's verifier accepted it", tc.tenant)
		}
	}
}

func TestNoAssertionNoKeys(t *testing.T) {
	start(t, gatewayOptions{})
	g := newGuest(t)
	expectStatus(t, g.get(contoso+hostBase+"jwks.json"), http.StatusNotFound)
}

// A client's own X-Auth-Assertion never reaches a backend: not through a
// gateway without assertion, not on the routes an `email_otp <matcher>`
// leaves; a captured one would otherwise replay for its lifetime, even
// after sign-out. And a route's gateway that signs assertions publishes its
// keys even where the site's first gateway has none.
func TestClientAssertionNeverReachesTheBackend(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/docs/a", "ann@contoso.com")
	if got := g.backendView(contoso+"/docs/a", "X-Auth-Assertion", "captured").Headers["X-Auth-Assertion"]; got != nil {
		t.Errorf("a gateway without assertion passed the client's %q", got)
	}

	e.load(fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
	storage file_system %s
}
http://contoso.localhost:9080 {
	email_otp /docs/* {
		allow *@contoso.com
		assertion
	}
	reverse_proxy %s
}
`, e.storage, strings.TrimPrefix(e.backend.URL, "http://")))
	if got := newGuest(t).backendView(contoso+"/public/a", "X-Auth-Assertion", "captured", "X_Auth_Assertion", "captured").Headers; got["X-Auth-Assertion"] != nil || got["X_auth_assertion"] != nil {
		t.Errorf("the route the matcher leaves passed the client's assertion: %q", got)
	}

	e.load(e.contosoSite("allow *@contoso.com", `route /finance/* {
		email_otp {
			allow cfo@contoso.com
			assertion
		}
	}`))
	expectStatus(t, newGuest(t).get(contoso+hostBase+"jwks.json"), http.StatusOK, `"alg":"ES256"`)
}
