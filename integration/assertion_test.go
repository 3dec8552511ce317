package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
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

	e.load(globalOptions(e.storage) + fmt.Sprintf(`http://contoso.localhost:9080 {
	email_otp /docs/* {
		allow *@contoso.com
		assertion
	}
	reverse_proxy %s
}
`, strings.TrimPrefix(e.backend.URL, "http://")))
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

// The assertion's issuer is the tenant's, whatever spelling of the host the
// client sends: the backend sees one issuer, and a new spelling costs no
// fresh signature (the remembered assertion is reused).
func TestAssertionIssuerIgnoresTheHostsSpelling(t *testing.T) {
	e := start(t, gatewayOptions{extra: "assertion {\n\t\t\taudience reports-app\n\t\t}"})
	g := newGuest(t)
	e.signIn(g, pathSite, acmeBase, "/t/acme/docs/a", "ann@contoso.com")
	var tokens []string
	for _, host := range []string{"localhost:9080", "LocalHost:9080", "LOCALHOST:9080"} {
		req, _ := http.NewRequest(http.MethodGet, pathSite+"/t/acme/docs/a", nil)
		req.Host = host
		r := g.do(req)
		expectStatus(t, r, http.StatusOK)
		var seen backendSeen
		if err := json.Unmarshal([]byte(r.body), &seen); err != nil || len(seen.Headers["X-Auth-Assertion"]) != 1 {
			t.Fatalf("Host %s: the backend got no assertion: %v\n%s", host, err, r.body)
		}
		token := seen.Headers["X-Auth-Assertion"][0]
		if iss := claimOf(t, token, "iss"); iss != pathSite+"/t/acme/" {
			t.Errorf("Host %s: iss %q, want %q", host, iss, pathSite+"/t/acme/")
		}
		tokens = append(tokens, token)
	}
	if tokens[1] != tokens[0] || tokens[2] != tokens[0] {
		t.Error("another spelling of the host got a freshly signed assertion")
	}
}

// claimOf reads one string claim of a JWT without checking it (the tests
// that check signatures use the example verifier).
func claimOf(t *testing.T, token, name string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	s, _ := claims[name].(string)
	return s
}
