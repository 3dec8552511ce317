// Package verifier is what a backend needs to trust a request from the
// gateway without trusting the network in between: it checks the
// X-Auth-Assertion header (a JWT, ES256) against the keys the gateway
// publishes at <tenant root>/.email-otp/jwks.json. Copy it into your
// service; it needs only github.com/go-jose/go-jose/v4.
//
//	v := &verifier.Verifier{
//		JWKSURL:  "https://docs.example.com/.email-otp/jwks.json",
//		Issuer:   "https://docs.example.com/",
//		Audience: "reports-app",
//	}
//	id, err := v.Verify(r.Context(), r.Header.Get("X-Auth-Assertion"))
//	if err != nil { http.Error(w, "not signed in", http.StatusUnauthorized); return }
//	// id.Email signed in to id.Tenant
package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Identity is who the gateway says is calling.
type Identity struct {
	Email     string
	Tenant    string
	SessionID string
	Status    string // the guest's directory status: redeemed, invited, …
	Expiry    time.Time
}

// Verifier checks assertions. The zero value is not usable: set JWKSURL,
// Issuer and Audience.
type Verifier struct {
	JWKSURL  string // the gateway's jwks.json
	Issuer   string // the gateway's iss: its base URL and the tenant root
	Audience string // this service's name, as in the gateway's `assertion { audience … }`
	Tenant   string // if set, only assertions for this tenant id pass
	Client   *http.Client

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

// Verify returns the identity in token, or why it must not be trusted.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, errors.New("no assertion")
	}
	// Only ES256: "none" and HMAC tricks fail here.
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Identity{}, fmt.Errorf("not a signed assertion: %w", err)
	}
	key, err := v.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return Identity{}, err
	}
	var std jwt.Claims
	var ours struct {
		Email  string `json:"email"`
		Tenant string `json:"tenant"`
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := tok.Claims(key, &std, &ours); err != nil {
		return Identity{}, fmt.Errorf("bad signature: %w", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.Issuer, AnyAudience: jwt.Audience{v.Audience}, Time: time.Now()}, 30*time.Second); err != nil {
		return Identity{}, err
	}
	if v.Tenant != "" && ours.Tenant != v.Tenant {
		return Identity{}, fmt.Errorf("assertion for tenant %q, not %q", ours.Tenant, v.Tenant)
	}
	if ours.Email == "" || ours.Email != std.Subject {
		return Identity{}, errors.New("assertion names no address")
	}
	return Identity{Email: ours.Email, Tenant: ours.Tenant, SessionID: ours.SID, Status: ours.Status, Expiry: std.Expiry.Time()}, nil
}

// key finds the public key kid, fetching the JWKS again when kid is new
// (the gateway published a rotated key), at most once every 10 seconds.
func (v *Verifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ks := v.keys.Key(kid); len(ks) == 1 {
		return &ks[0], nil
	}
	if time.Since(v.fetched) < 10*time.Second {
		return nil, fmt.Errorf("unknown key %q", kid)
	}
	v.fetched = time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	client := v.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the gateway's keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the gateway's keys: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("reading the gateway's keys: %w", err)
	}
	v.keys = set
	if ks := v.keys.Key(kid); len(ks) == 1 {
		return &ks[0], nil
	}
	return nil, fmt.Errorf("unknown key %q", kid)
}
