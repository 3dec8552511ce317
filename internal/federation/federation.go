// Package federation is the gateway's side of OpenID Connect: it sends a
// guest whose address belongs to a configured provider there (the
// authorization code flow with PKCE, state, nonce and login_hint) and
// checks what comes back. github.com/coreos/go-oidc checks the ID token
// (issuer, signature with the provider's published keys, audience, expiry)
// and golang.org/x/oauth2 makes the exchange; this package adds what a
// gateway in front of shared documents must hold: the nonce, a verified
// address, an address inside the provider's domains, and the operator's
// extra claims.
package federation

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Lifetime of a redirect: the guest must come back from the provider
// within it.
const Lifetime = 10 * time.Minute

// Config is one provider as the operator writes it.
type Config struct {
	Name         string
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string          // "openid" is always asked for
	Domains      []string          // the addresses it serves, in the allow list's forms
	Claims       map[string]string // claims the ID token must carry with these values (Entra's tid, Google's hd)
	// UseTokenExpiry ends the provider's sessions when its ID token expires.
	UseTokenExpiry bool
}

// Provider is a configured provider, its discovery fetched on first need
// and kept.
type Provider struct {
	cfg     Config
	domains flow.Policy
	client  *http.Client

	mu        sync.Mutex
	discovery *oidc.Provider
	triedAt   time.Time
	lastErr   error
	answerAt  time.Time // when the provider last answered
}

// answeredWithin is how recent the provider's last answer must be for a
// guest to be sent there without asking it again: a provider that went
// down after its discovery is found out before the guest lands on it.
const answeredWithin = 2 * time.Second

// retryAfter is how long a failed discovery is not tried again: a provider
// that is down is asked once per this, not on every guest's request.
const retryAfter = 10 * time.Second

// discoveryTimeout bounds one fetch of a provider's configuration: a
// config load with a provider that does not answer waits this long.
const discoveryTimeout = 3 * time.Second

// New checks cfg and returns its provider; nothing is fetched yet.
func New(cfg Config) (*Provider, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("provider: a name is required")
	case cfg.Issuer == "":
		return nil, fmt.Errorf("provider %s: issuer is required (the provider's URL, where /.well-known/openid-configuration is)", cfg.Name)
	case cfg.ClientID == "":
		return nil, fmt.Errorf("provider %s: client_id is required", cfg.Name)
	case len(cfg.Domains) == 0:
		return nil, fmt.Errorf("provider %s: domains is required (the addresses it serves, e.g. *@contoso.com)", cfg.Name)
	}
	domains, err := flow.NewPolicy(cfg.Domains, nil, false)
	if err != nil {
		return nil, fmt.Errorf("provider %s: domains: %w", cfg.Name, err)
	}
	return &Provider{cfg: cfg, domains: domains, client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Name is the provider's name, as the method says it (oidc:<name>).
func (p *Provider) Name() string { return p.cfg.Name }

// Serves reports whether addr is one of the provider's addresses.
func (p *Provider) Serves(addr string) bool { return p.domains.Allowed(addr) }

// ErrUnavailable wraps a provider that could not be reached.
var ErrUnavailable = errors.New("the identity provider is not reachable")

// Discover fetches the provider's configuration if it has not been yet; a
// failure is remembered for a few seconds.
func (p *Provider) Discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.discovery != nil {
		return p.discovery, nil
	}
	if p.lastErr != nil && time.Since(p.triedAt) < retryAfter {
		return nil, p.lastErr
	}
	// Bounded, since a load waits for it; go-oidc keeps the context's values
	// (the client), not its deadline, for fetching the provider's keys later.
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	d, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	p.triedAt = time.Now()
	if err != nil {
		p.lastErr = fmt.Errorf("%w: provider %s at %s: %v", ErrUnavailable, p.cfg.Name, p.cfg.Issuer, err)
		return nil, p.lastErr
	}
	p.discovery, p.lastErr, p.answerAt = d, nil, p.triedAt
	return d, nil
}

// reachable asks the provider's discovery document again unless it
// answered within answeredWithin.
func (p *Provider) reachable(ctx context.Context) error {
	p.mu.Lock()
	fresh := time.Since(p.answerAt) < answeredWithin
	p.mu.Unlock()
	if fresh {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.cfg.Issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: provider %s: %v", ErrUnavailable, p.cfg.Name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: provider %s answered %s", ErrUnavailable, p.cfg.Name, resp.Status)
	}
	p.mu.Lock()
	p.answerAt = time.Now()
	p.mu.Unlock()
	return nil
}

func (p *Provider) oauth2(d *oidc.Provider, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: d.Endpoint(),
		RedirectURL: redirectURI, Scopes: append([]string{oidc.ScopeOpenID}, p.cfg.Scopes...),
	}
}

// Trip is one guest's way to the provider and back: what must be kept
// (server-side) until the provider answers.
type Trip struct {
	Provider string `json:"p"`
	Tenant   string `json:"t"`
	Email    string `json:"e"` // the address the guest typed: the login_hint
	RD       string `json:"r"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"` // the PKCE verifier
}

// Start makes the trip for email and the URL to send the guest to.
func (p *Provider) Start(ctx context.Context, tenant, email, rd, redirectURI string) (Trip, string, error) {
	d, err := p.Discover(ctx)
	if err == nil {
		err = p.reachable(ctx)
	}
	if err != nil {
		return Trip{}, "", err
	}
	trip := Trip{
		Provider: p.cfg.Name, Tenant: tenant, Email: email, RD: rd,
		State: flow.RandomToken() + flow.RandomToken(), Nonce: flow.RandomToken(), Verifier: oauth2.GenerateVerifier(),
	}
	url := p.oauth2(d, redirectURI).AuthCodeURL(trip.State, oidc.Nonce(trip.Nonce),
		oauth2.S256ChallengeOption(trip.Verifier), oauth2.SetAuthURLParam("login_hint", email))
	return trip, url, nil
}

// Why an answer is refused; each wraps the detail for the log.
var (
	ErrRefused         = errors.New("the provider's answer was refused")         // a bad token, nonce, exchange
	ErrNotVerified     = errors.New("the provider has not verified the address") // email_verified is not true
	ErrOutsideDomains  = errors.New("the provider named an address outside its domains")
	ErrClaimMismatch   = errors.New("the ID token lacks a claim the configuration requires")
	ErrProviderRefused = errors.New("the provider answered with an error") // error=… on the callback
)

// Identity is what a provider's answer proved.
type Identity struct {
	Email   string
	Subject string
	Expiry  time.Time // the ID token's
}

// Finish exchanges the code of the provider's answer to trip and checks the
// ID token; the address it proves is parsed as every address is.
func (p *Provider) Finish(ctx context.Context, trip Trip, code, redirectURI string) (Identity, error) {
	d, err := p.Discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	ctx = oidc.ClientContext(ctx, p.client)
	tok, err := p.oauth2(d, redirectURI).Exchange(ctx, code, oauth2.VerifierOption(trip.Verifier))
	var netErr *url.Error
	if errors.As(err, &netErr) {
		return Identity{}, fmt.Errorf("%w: exchanging the code: %v", ErrUnavailable, err)
	} else if err != nil {
		return Identity{}, fmt.Errorf("%w: exchanging the code: %v", ErrRefused, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return Identity{}, fmt.Errorf("%w: the token response has no id_token", ErrRefused)
	}
	idt, err := d.Verifier(&oidc.Config{ClientID: p.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(trip.Nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: the nonce is not this sign-in's", ErrRefused)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
	}
	all := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrRefused, err)
	}
	_ = idt.Claims(&all)
	if claims.Email == "" && d.UserInfoEndpoint() != "" {
		// The address is not in the ID token (a provider that keeps it to
		// the userinfo endpoint): ask there, for the same subject.
		info, err := d.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, fmt.Errorf("%w: userinfo: %v", ErrRefused, err)
		}
		if info.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("%w: userinfo is about another subject", ErrRefused)
		}
		if err := info.Claims(&claims); err != nil {
			return Identity{}, fmt.Errorf("%w: userinfo claims: %v", ErrRefused, err)
		}
	}
	// Some providers send the boolean as a string; only true counts.
	if v, _ := claims.EmailVerified.(bool); !v && claims.EmailVerified != "true" {
		return Identity{}, fmt.Errorf("%w (%s)", ErrNotVerified, claims.Email)
	}
	email, err := flow.ParseAddress(claims.Email)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the ID token's email %q: %v", ErrRefused, claims.Email, err)
	}
	if !p.Serves(email) {
		return Identity{}, fmt.Errorf("%w: %s", ErrOutsideDomains, email)
	}
	for k, want := range p.cfg.Claims {
		if got, _ := all[k].(string); got != want {
			return Identity{}, fmt.Errorf("%w: %s is %q, want %q", ErrClaimMismatch, k, got, want)
		}
	}
	return Identity{Email: email, Subject: idt.Subject, Expiry: idt.Expiry}, nil
}

// SessionNotAfter is when a session from id must end at the latest: the ID
// token's expiry where the provider is so configured, else zero (the
// gateway's session TTL alone).
func (p *Provider) SessionNotAfter(id Identity) time.Time {
	if !p.cfg.UseTokenExpiry {
		return time.Time{}
	}
	return id.Expiry
}

// TripKey names a trip in the store: the state, hashed, so the store never
// holds a value the provider's redirect carries.
func TripKey(state string) string {
	h := sha256.Sum256([]byte(state))
	return "oidc." + base64.RawURLEncoding.EncodeToString(h[:16])
}
