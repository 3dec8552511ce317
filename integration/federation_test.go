package integration

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/oidcprovider"
)

// A federated domain's guests sign in at their own provider, a real OpenID
// Connect provider on loopback (zitadel/oidc's), and come back signed in on
// the link they opened; every answer that should not count is refused.

const federatedDomain = "ad.partner.org" // inside the test policy's *@*.partner.org

func startFederated(t *testing.T, fallback string) (*env, *oidcprovider.Provider) {
	idp := oidcprovider.Start(t, "gateway", "s3cret", []string{contoso + hostBase + "oidc/callback", pathSite + acmeBase + "oidc/callback"},
		oidcprovider.User{Username: "ann", Email: "ann@" + federatedDomain, EmailVerified: true},
		oidcprovider.User{Username: "mallory", Email: "mallory@gmail.com", EmailVerified: true},
		oidcprovider.User{Username: "unverified", Email: "unverified@" + federatedDomain, EmailVerified: false},
	)
	t.Setenv("TEST_OIDC_SECRET", "s3cret") // the secret comes the way operators give it
	e := start(t, gatewayOptions{extra: federationBlock(idp.Issuer, fallback) + "\n\t\tassertion"})
	return e, idp
}

// federationBlock is the gateways' federation option for the test provider.
func federationBlock(issuer, fallback string) string {
	return federationBlockFor(issuer, fallback, federatedDomain)
}

func federationBlockFor(issuer, fallback, domain string) string {
	return `federation {
			provider fabrikam {
				issuer ` + issuer + `
				client_id gateway
				client_secret {env.TEST_OIDC_SECRET}
				domains *@` + domain + `
			}
			fallback ` + fallback + `
		}`
}

// toProvider asks for a sign-in as email at rd and returns where the
// gateway sends the guest.
func toProvider(t *testing.T, g *guest, origin, base, rd, email string) reply {
	t.Helper()
	page := g.get(origin + base + "signin?rd=" + url.QueryEscape(rd))
	return g.post(origin+base+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {email}, "rd": {rd}})
}

// viaProvider signs in at the provider as username and returns the
// gateway's answer to the way back.
func viaProvider(t *testing.T, g *guest, origin, base, rd, email, username string) reply {
	t.Helper()
	sent := toProvider(t, g, origin, base, rd, email)
	target := expectRedirect(t, sent, http.StatusSeeOther)
	back, err := oidcprovider.LogIn(g.client, target, username)
	if err != nil {
		t.Fatalf("at the provider: %v", err)
	}
	return g.get(back)
}

func TestFederatedGuestSignsInAtTheirProvider(t *testing.T) {
	e, idp := startFederated(t, "code")
	for _, tc := range []struct{ origin, base, deep string }{
		{contoso, hostBase, "/docs/plan.pdf?v=2"},
		{pathSite, acmeBase, "/t/acme/docs/plan.pdf?v=2"},
	} {
		g := newGuest(t)
		sent := toProvider(t, g, tc.origin, tc.base, tc.deep, "Ann@"+federatedDomain)
		target, _ := url.Parse(expectRedirect(t, sent, http.StatusSeeOther))
		q := target.Query()
		if !strings.HasPrefix(target.String(), idp.Issuer) || q.Get("login_hint") != "ann@"+federatedDomain || q.Get("code_challenge_method") != "S256" ||
			q.Get("state") == "" || q.Get("nonce") == "" || q.Get("client_id") != "gateway" || q.Get("redirect_uri") != tc.origin+tc.base+"oidc/callback" {
			t.Fatalf("sent to %s", target)
		}
		back, err := oidcprovider.LogIn(g.client, target.String(), "ann")
		if err != nil {
			t.Fatal(err)
		}
		landed := expectRedirect(t, g.get(back), http.StatusSeeOther)
		if landed != tc.deep {
			t.Errorf("landed on %q, want %q", landed, tc.deep)
		}
		seen := g.backendView(tc.origin + landed)
		if m := seen.Headers["X-Auth-Method"]; len(m) != 1 || m[0] != "oidc:fabrikam" || seen.Headers["X-Auth-Email"][0] != "ann@"+federatedDomain {
			t.Errorf("the backend saw %v", seen.Headers)
		}
		if c := assertionClaims(strings.Join(seen.Headers["X-Auth-Assertion"], "")); len(c.AMR) != 1 || c.AMR[0] != "fed" || c.IDP != "fabrikam" {
			t.Errorf("the assertion says amr %v, idp %q; want [fed], fabrikam", c.AMR, c.IDP)
		}
		// The way back works once.
		expectStatus(t, newGuest(t).get(back), http.StatusForbidden, "started in another browser")
		expectStatus(t, g.get(back), http.StatusForbidden, "started in another browser")
	}
	if n := e.smtp.Count("ann@" + federatedDomain); n != 0 {
		t.Errorf("%d mails went to a federated guest", n)
	}
	// "why" says which way in an address gets.
	for email, want := range map[string]string{"ann@" + federatedDomain: "oidc:fabrikam", "bob@contoso.com": "code"} {
		var why struct {
			Gateways []struct {
				SignsInWith string `json:"signs_in_with"`
			} `json:"gateways"`
		}
		adminAPIAt(t, "/email-otp/why/contoso.localhost/"+email, &why)
		if len(why.Gateways) != 1 || why.Gateways[0].SignsInWith != want {
			t.Errorf("why %s: %+v, want %s", email, why, want)
		}
	}
	// An address no provider serves gets the code, as ever.
	expectRedirect(t, toProvider(t, newGuest(t), contoso, hostBase, "/x", "bob@contoso.com"), http.StatusSeeOther)
	e.smtp.Wait(t, "bob@contoso.com", 1, 10*time.Second)
}

func TestFederatedAnswersThatDoNotCount(t *testing.T) {
	_, _ = startFederated(t, "code")
	// The provider vouches for an address outside its domains.
	expectStatus(t, viaProvider(t, newGuest(t), contoso, hostBase, "/x", "mallory@"+federatedDomain, "mallory"), http.StatusForbidden,
		"answered for an address it does not sign in here")
	// email_verified is false.
	expectStatus(t, viaProvider(t, newGuest(t), contoso, hostBase, "/x", "unverified@"+federatedDomain, "unverified"), http.StatusForbidden,
		"has not confirmed your email address")
	// A state that is not this browser's.
	g := newGuest(t)
	target := expectRedirect(t, toProvider(t, g, contoso, hostBase, "/x", "ann@"+federatedDomain), http.StatusSeeOther)
	back, err := oidcprovider.LogIn(g.client, target, "ann")
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(back, "state=", "state=x", 1)
	expectStatus(t, g.get(forged), http.StatusForbidden, "started in another browser")

	// The provider answers with an error (the guest declined there): a page
	// in the guest's language, and the code offered (fallback code).
	h := newGuest(t)
	to, _ := url.Parse(expectRedirect(t, toProvider(t, h, contoso, hostBase, "/x", "ann@"+federatedDomain), http.StatusSeeOther))
	declined := contoso + hostBase + "oidc/callback?error=access_denied&state=" + url.QueryEscape(to.Query().Get("state"))
	expectStatus(t, h.get(declined, "Accept-Language", "de"), http.StatusForbidden, "Anmeldung hat nicht funktioniert", `name="via" value="code"`)
}

// With consent on, a provider's first sign-in asks for it like a code's
// does, and then lands signed in by the provider.
func TestFederatedFirstSignInAsksForConsent(t *testing.T) {
	idp := oidcprovider.Start(t, "gateway", "s3cret", []string{contoso + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "ann", Email: "ann@" + federatedDomain, EmailVerified: true})
	t.Setenv("TEST_OIDC_SECRET", "s3cret")
	start(t, gatewayOptions{extra: federationBlock(idp.Issuer, "code") + "\n\t\tconsent"})
	g := newGuest(t)
	if to := expectRedirect(t, viaProvider(t, g, contoso, hostBase, "/docs/a", "ann@"+federatedDomain, "ann"), http.StatusSeeOther); to != hostBase+"consent" {
		t.Fatalf("the first sign-in went to %q, want the consent page", to)
	}
	page := g.get(contoso + hostBase + "consent")
	landed := expectRedirect(t, g.post(contoso+hostBase+"consent", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "decision": {"accept"}}), http.StatusSeeOther)
	if m := g.backendView(contoso + landed).Headers["X-Auth-Method"]; landed != "/docs/a" || len(m) != 1 || m[0] != "oidc:fabrikam" {
		t.Errorf("after consent: landed on %q as %v", landed, m)
	}
}

// The provider is down: the guest is told so in their language and, with
// fallback code, may get a code instead; with fallback off, may not.
func TestFederatedProviderDown(t *testing.T) {
	e, idp := startFederated(t, "code")
	idp.Stop()
	time.Sleep(2100 * time.Millisecond) // past the provider's last answer's freshness
	g := newGuest(t)
	down := toProvider(t, g, contoso, hostBase, "/docs/a.pdf", "ann@"+federatedDomain)
	expectStatus(t, down, http.StatusServiceUnavailable, "sign-in service did not answer", "Get a code by email instead")
	fallback := url.Values{"csrf": {formValue(t, down.body, "csrf")}, "email": {formValue(t, down.body, "email")}, "rd": {formValue(t, down.body, "rd")}, "via": {"code"}}
	if to := expectRedirect(t, g.post(contoso+hostBase+"send", fallback), http.StatusSeeOther); !strings.HasSuffix(to, "verify") {
		t.Fatalf("the fallback went to %q", to)
	}
	e.smtp.Wait(t, "ann@"+federatedDomain, 1, 10*time.Second)

	e.load(gatewayOptions{extra: federationBlock(idp.Issuer, "off")})
	g = newGuest(t)
	down = toProvider(t, g, contoso, hostBase, "/docs/a.pdf", "ann@"+federatedDomain)
	expectStatus(t, down, http.StatusServiceUnavailable, "sign-in service did not answer")
	if strings.Contains(down.body, `name="via"`) {
		t.Error("with fallback off the page still offers a code")
	}
	// A stranger's via=code does not push the guest onto the code.
	fallback["csrf"] = []string{formValue(t, g.get(contoso+hostBase+"signin").body, "csrf")}
	expectStatus(t, g.post(contoso+hostBase+"send", fallback), http.StatusServiceUnavailable, "sign-in service did not answer")
	if n := e.smtp.Count("ann@" + federatedDomain); n != 1 {
		t.Errorf("%d codes mailed, want only the one the fallback allowed", n)
	}
}

// A revoked guest is refused even with the provider's valid answer; a guest
// who signed in by code before their domain got a provider is a provider's
// guest at their next sign-in, with nothing for an admin to do.
func TestFederationHoldsThePolicyAndHealsTheSource(t *testing.T) {
	idp := oidcprovider.Start(t, "gateway", "s3cret", []string{contoso + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "ann", Email: "ann@" + federatedDomain, EmailVerified: true},
		oidcprovider.User{Username: "rev", Email: "rev@" + federatedDomain, EmailVerified: true},
	)
	t.Setenv("TEST_OIDC_SECRET", "s3cret")
	e := start(t, gatewayOptions{})
	// Before the provider: a code, source otp.
	e.signIn(newGuest(t), contoso, hostBase, "/", "ann@"+federatedDomain)
	var g guestRecord
	adminAPI(t, http.MethodGet, "contoso.localhost/ann@"+federatedDomain, nil, &g)
	if g.Source != "otp" {
		t.Fatalf("after a code the source is %q", g.Source)
	}
	e.load(gatewayOptions{extra: federationBlock(idp.Issuer, "code")})
	landed := expectRedirect(t, viaProvider(t, newGuest(t), contoso, hostBase, "/docs/a", "ann@"+federatedDomain, "ann"), http.StatusSeeOther)
	if landed != "/docs/a" {
		t.Errorf("landed on %q", landed)
	}
	adminAPI(t, http.MethodGet, "contoso.localhost/ann@"+federatedDomain, nil, &g)
	if g.Source != "oidc:fabrikam" || g.Status != "redeemed" {
		t.Errorf("after the provider's sign-in the record says source %q, status %q", g.Source, g.Status)
	}

	// Revoked: the provider's valid answer opens nothing.
	adminAPI(t, http.MethodPost, "contoso.localhost", map[string]any{"email": "rev@" + federatedDomain, "send_email": false}, nil)
	if st := adminAPI(t, http.MethodPost, "contoso.localhost/rev@"+federatedDomain+"/revoke", nil, nil); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	expectStatus(t, viaProvider(t, newGuest(t), contoso, hostBase, "/x", "rev@"+federatedDomain, "rev"), http.StatusForbidden, "may not open this site")
}

// guestRecord is what the admin API shows of a guest, as far as these tests read it.
type guestRecord struct {
	Source string `json:"source"`
	Status string `json:"status"`
}

// The way to the provider starts on node A and comes back on node B: the
// trip is in Redis, the browser's pending cookie names it.
func TestFederationStartOnOneNodeReturnOnTheOther(t *testing.T) {
	front := "http://contoso.localhost:9280"
	idp := oidcprovider.Start(t, "gateway", "s3cret", []string{front + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "carl", Email: "carl@contoso.com", EmailVerified: true})
	t.Setenv("TEST_OIDC_SECRET", "s3cret")
	startCluster(t, federationBlockFor(idp.Issuer, "code", "contoso.com"))
	_, sentToA, _ := splitFrontBy(t, "127.0.0.1:9080", "127.0.0.1:9180", func(path string) bool { return strings.HasSuffix(path, "/send") })
	g := newGuest(t)
	landed := expectRedirect(t, viaProvider(t, g, front, hostBase, "/docs/a", "carl@contoso.com", "carl"), http.StatusSeeOther)
	if landed != "/docs/a" || sentToA.Load() != 1 {
		t.Fatalf("landed on %q after %d sends on node A", landed, sentToA.Load())
	}
	if m := g.backendView(front + landed).Headers["X-Auth-Method"]; len(m) != 1 || m[0] != "oidc:fabrikam" {
		t.Errorf("node B's backend saw method %v", m)
	}
}

// Two providers, each picked by the guest's domain; an address of one is
// never sent to the other.
func TestFederationPicksTheProviderByDomain(t *testing.T) {
	fab := oidcprovider.Start(t, "gateway", "s3cret", []string{contoso + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "ann", Email: "ann@" + federatedDomain, EmailVerified: true})
	other := oidcprovider.Start(t, "gateway-2", "s3cret-2", []string{contoso + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "bea", Email: "bea@eu.partner.org", EmailVerified: true})
	t.Setenv("TEST_OIDC_SECRET", "s3cret")
	start(t, gatewayOptions{extra: `federation {
			provider fabrikam {
				issuer ` + fab.Issuer + `
				client_id gateway
				client_secret {env.TEST_OIDC_SECRET}
				domains *@` + federatedDomain + `
			}
			provider northwind {
				issuer ` + other.Issuer + `
				client_id gateway-2
				client_secret s3cret-2
				domains *@eu.partner.org
				use_token_expiry
			}
		}`})
	for _, tc := range []struct{ email, user, issuer, method string }{
		{"ann@" + federatedDomain, "ann", fab.Issuer, "oidc:fabrikam"},
		{"bea@eu.partner.org", "bea", other.Issuer, "oidc:northwind"},
	} {
		g := newGuest(t)
		target := expectRedirect(t, toProvider(t, g, contoso, hostBase, "/docs/a", tc.email), http.StatusSeeOther)
		if !strings.HasPrefix(target, tc.issuer) {
			t.Errorf("%s was sent to %s, want %s", tc.email, target, tc.issuer)
			continue
		}
		back, err := oidcprovider.LogIn(g.client, target, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		landed := expectRedirect(t, g.get(back), http.StatusSeeOther)
		if m := g.backendView(contoso + landed).Headers["X-Auth-Method"]; len(m) != 1 || m[0] != tc.method {
			t.Errorf("%s signed in as %v, want %s", tc.email, m, tc.method)
		}
		// northwind's sessions end with its ID token (an hour), fabrikam's last the usual day.
		var session struct {
			Expires time.Time `json:"expires"`
			Method  string    `json:"method"`
		}
		if err := json.Unmarshal([]byte(g.get(contoso+hostBase+"session", "Accept", "application/json").body), &session); err != nil {
			t.Fatal(err)
		}
		left := time.Until(session.Expires)
		if tc.method == "oidc:northwind" && (left > time.Hour+time.Minute || left < 50*time.Minute) ||
			tc.method == "oidc:fabrikam" && left < 23*time.Hour || session.Method != tc.method {
			t.Errorf("%s: the session (%s) ends in %v", tc.email, session.Method, left)
		}
	}
}

// The provider's token endpoint in the wrong hands: each ID token that is
// not this sign-in's own, for this client, signed with the provider's keys,
// is refused, and nobody is signed in.
func TestFederatedTokensThatDoNotCount(t *testing.T) {
	_, idp := startFederated(t, "code")
	expectRedirect(t, viaProvider(t, newGuest(t), contoso, hostBase, "/x", "ann@"+federatedDomain, "ann"), http.StatusSeeOther)
	earlier := idp.Issued()[len(idp.Issued())-1]
	otherClient, err := idp.TokenForOtherClient("ann")
	if err != nil {
		t.Fatal(err)
	}
	for name, swap := range map[string]func(string) string{
		"an earlier sign-in's token (replayed nonce)":  func(string) string { return earlier },
		"a token for another client":                   func(string) string { return otherClient },
		"this sign-in's token signed with another key": resignWithAnotherKey(t),
	} {
		idp.Tamper(swap)
		g := newGuest(t)
		expectStatus(t, viaProvider(t, g, contoso, hostBase, "/x", "ann@"+federatedDomain, "ann"), http.StatusForbidden, "could not be accepted")
		if g.cookie(contoso+"/", "email_otp_session") != nil {
			t.Errorf("%s: a session was set", name)
		}
	}
	idp.Tamper(nil)
	expectRedirect(t, viaProvider(t, newGuest(t), contoso, hostBase, "/x", "ann@"+federatedDomain, "ann"), http.StatusSeeOther)
}

// resignWithAnotherKey keeps a token's header (its key id too) and claims
// and signs them with a key the provider never published.
func resignWithAnotherKey(t *testing.T) func(string) string {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return func(token string) string {
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Errorf("not a JWS: %q", token)
			return token
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		if err != nil {
			t.Error(err)
		}
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
}

// A claim the configuration requires must be in the ID token with that
// value: the provider's own issuer claim passes, another value refuses.
func TestFederationRequiredClaims(t *testing.T) {
	idp := oidcprovider.Start(t, "gateway", "s3cret", []string{contoso + hostBase + "oidc/callback"},
		oidcprovider.User{Username: "ann", Email: "ann@" + federatedDomain, EmailVerified: true})
	t.Setenv("TEST_OIDC_SECRET", "s3cret")
	e := start(t, gatewayOptions{})
	for value, want := range map[string]int{idp.Issuer: http.StatusSeeOther, "https://another.example": http.StatusForbidden} {
		e.load(gatewayOptions{extra: strings.Replace(federationBlock(idp.Issuer, "code"), "domains ", "claim iss "+value+"\n\t\t\t\tdomains ", 1)})
		got := viaProvider(t, newGuest(t), contoso, hostBase, "/x", "ann@"+federatedDomain, "ann")
		if got.StatusCode != want {
			t.Errorf("claim iss %s: %d, want %d", value, got.StatusCode, want)
		}
	}
}
