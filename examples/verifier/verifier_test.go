package verifier

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/internal/assertion"
)

// gateway stands in for the gateway's side: its key ring, a minter and the
// JWKS it publishes (served over real HTTP).
type gateway struct {
	ring   *assertion.Ring
	minter *assertion.Minter
	jwks   atomic.Value // []byte
	srv    *httptest.Server
}

func newGateway(t *testing.T, now time.Time) *gateway {
	g := &gateway{ring: &assertion.Ring{Schedule: assertion.Schedule{TTL: 5 * time.Minute, Rotate: 7 * 24 * time.Hour, Lead: time.Hour}}}
	if _, err := g.ring.Rotate(now); err != nil {
		t.Fatal(err)
	}
	g.minter = assertion.NewMinter(g.ring, 10)
	g.publish(t)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(g.jwks.Load().([]byte))
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) publish(t *testing.T) {
	b, err := g.ring.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	g.jwks.Store(b)
}

func (g *gateway) mint(t *testing.T, c assertion.Claims, now time.Time) string {
	tok, err := g.minter.Mint(c, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func claims() assertion.Claims {
	return assertion.Claims{Issuer: "https://docs.example.com/", Audience: []string{"reports-app"}, Subject: "ann@example.com",
		Email: "ann@example.com", Tenant: "docs.example.com", SessionID: "s1", Status: "redeemed"}
}

func TestVerifierAcceptsTheGatewaysAssertion(t *testing.T) {
	now := time.Now()
	g := newGateway(t, now.Add(-2*time.Hour))
	v := &Verifier{JWKSURL: g.srv.URL, Issuer: "https://docs.example.com/", Audience: "reports-app", Tenant: "docs.example.com"}
	id, err := v.Verify(context.Background(), g.mint(t, claims(), now))
	if err != nil || id.Email != "ann@example.com" || id.Tenant != "docs.example.com" || id.SessionID != "s1" || id.Status != "redeemed" {
		t.Fatalf("%+v %v", id, err)
	}
}

func TestVerifierRejects(t *testing.T) {
	now := time.Now()
	g := newGateway(t, now.Add(-2*time.Hour))
	v := &Verifier{JWKSURL: g.srv.URL, Issuer: "https://docs.example.com/", Audience: "reports-app", Tenant: "docs.example.com"}
	good := g.mint(t, claims(), now)
	parts := strings.Split(good, ".")

	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://docs.example.com/","aud":["reports-app"],"sub":"boss@example.com","email":"boss@example.com","tenant":"docs.example.com","exp":9999999999}`)) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	expiredClaims := claims()
	expiredClaims.SessionID = "old"
	expired := g.mint(t, expiredClaims, now.Add(-10*time.Minute))

	otherAudience := claims()
	otherAudience.SessionID, otherAudience.Audience = "aud", []string{"billing-app"}
	otherTenant := claims()
	otherTenant.SessionID, otherTenant.Tenant = "ten", "evil.example.com"
	otherIssuer := claims()
	otherIssuer.SessionID, otherIssuer.Issuer = "iss", "https://evil.example.com/"

	stranger := newGateway(t, now.Add(-2*time.Hour)) // another gateway's key
	for name, tok := range map[string]string{
		"empty":          "",
		"garbage":        "not.a.jwt",
		"tampered":       tampered,
		"alg none":       none,
		"expired":        expired,
		"wrong audience": g.mint(t, otherAudience, now),
		"other tenant":   g.mint(t, otherTenant, now),
		"other issuer":   g.mint(t, otherIssuer, now),
		"unknown key":    stranger.mint(t, claims(), now),
	} {
		if id, err := v.Verify(context.Background(), tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, id)
		}
	}
}

// Across a rotation: an assertion of the old key still verifies while it
// lives, one of the new key makes the verifier fetch the keys again.
func TestVerifierFollowsAKeyRotation(t *testing.T) {
	// The rotation happened at r; the new key signs from r+Lead, two
	// minutes ago. An assertion of the old key from three minutes ago lives on.
	now := time.Now()
	r := now.Add(-time.Hour - 2*time.Minute)
	g := newGateway(t, r.Add(-7*24*time.Hour+time.Hour)) // the first key, due at r
	v := &Verifier{JWKSURL: g.srv.URL, Issuer: "https://docs.example.com/", Audience: "reports-app"}
	before := g.mint(t, claims(), now.Add(-3*time.Minute))
	if _, err := v.Verify(context.Background(), before); err != nil {
		t.Fatal(err)
	}
	if changed, err := g.ring.Rotate(r); err != nil || !changed {
		t.Fatalf("rotation: %v %v", changed, err)
	}
	g.minter.SetRing(g.ring)
	g.publish(t)
	v.fetched = time.Time{} // as if the last fetch were long ago
	after := claims()
	after.SessionID = "s2"
	tok := g.mint(t, after, now) // the new key signs now
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("the new key's assertion: %v", err)
	}
	if _, err := v.Verify(context.Background(), before); err != nil {
		t.Errorf("the old key's live assertion after the rotation: %v", err)
	}
	if strings.Split(tok, ".")[0] == strings.Split(before, ".")[0] {
		t.Error("both assertions name the same key")
	}
}
