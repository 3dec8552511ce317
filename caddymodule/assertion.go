package emailotp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/assertion"
	"github.com/otpgate/caddy-email-otp/internal/hygiene"
	"github.com/otpgate/caddy-email-otp/templates"
)

// AssertionConfig turns on the signed assertion: with every request it lets
// through, the gateway sends the backend a JWT (ES256) saying who signed in,
// which the backend checks against the keys at <tenant root>/.email-otp/jwks.json
// instead of trusting the network (see examples/verifier).
type AssertionConfig struct {
	// Header carries the assertion. Default X-Auth-Assertion.
	Header string `json:"header,omitempty"`
	// Audience names the backends the assertion is for (the JWT's aud).
	// Default: none.
	Audience []string `json:"audience,omitempty"`
	// TTL is how long one assertion is valid. Default 5m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Rotate is how long a signing key is used before the next one takes
	// over; keys live in Caddy's storage, shared by the nodes. Default 7d.
	Rotate caddy.Duration `json:"rotate,omitempty"`
}

// assertionKeysKey is where the signing keys live in Caddy's storage.
const assertionKeysKey = "email_otp/assertion_keys.json"

// assertionLead is how long a new key is published before it signs: nodes
// re-read the keys every quarter of it, backends cache the JWKS for less.
const assertionLead = time.Hour

// assertionSigner signs the assertions of one gateway with the keys in
// Caddy's storage, which it keeps current (rotated on schedule, re-read for
// the other nodes' new keys), and publishes their public half.
type assertionSigner struct {
	header   string // canonical
	audience []string
	schedule assertion.Schedule
	storage  certmagic.Storage
	clock    flow.Clock
	log      *zap.Logger
	minter   *assertion.Minter
	jwks     atomic.Pointer[[]byte]
}

func (c *AssertionConfig) schedule() assertion.Schedule {
	return assertion.Schedule{TTL: time.Duration(c.TTL), Rotate: time.Duration(c.Rotate), Lead: assertionLead}
}

func (c *AssertionConfig) check() error {
	if c == nil {
		return nil
	}
	if c.Header != "" && !hygiene.ValidHeaderName(c.Header) {
		return fmt.Errorf("assertion: header %q is not a valid header name", c.Header)
	}
	if c.TTL < 0 || c.Rotate < 0 || c.Rotate != 0 && time.Duration(c.Rotate) < 2*assertionLead {
		return fmt.Errorf("assertion: ttl must be positive and rotate at least %v", 2*assertionLead)
	}
	return nil
}

// newAssertionSigner loads (or makes) the keys and keeps them current
// while ctx lives; nil without an assertion configured.
func newAssertionSigner(ctx caddy.Context, c *AssertionConfig, clock flow.Clock, log *zap.Logger) (*assertionSigner, error) {
	if c == nil {
		return nil, nil
	}
	s := &assertionSigner{
		header: http.CanonicalHeaderKey(c.headerName()), audience: c.Audience,
		schedule: c.schedule(), storage: ctx.Storage(), clock: clock, log: log,
	}
	ring, err := s.currentKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("assertion keys (%s in Caddy's storage): %w", assertionKeysKey, err)
	}
	s.minter = assertion.NewMinter(ring, 10_000)
	if err := s.publish(ring); err != nil {
		return nil, err
	}
	go s.refresh(ctx)
	return s, nil
}

func (s *assertionSigner) publish(r *assertion.Ring) error {
	b, err := r.JWKS()
	if err != nil {
		return err
	}
	s.jwks.Store(&b)
	return nil
}

// currentKeys reads the keys, rotating (and storing) them when due. The
// lock makes nodes that rotate together agree on one new key.
func (s *assertionSigner) currentKeys(ctx context.Context) (*assertion.Ring, error) {
	st := s.storage
	now := s.clock.Now()
	read := func() (*assertion.Ring, error) {
		data, err := st.Load(ctx, assertionKeysKey)
		if errors.Is(err, fs.ErrNotExist) {
			return &assertion.Ring{Schedule: s.schedule}, nil
		} else if err != nil {
			return nil, err
		}
		return assertion.Unmarshal(data, s.schedule)
	}
	ring, err := read()
	if err != nil {
		return nil, err
	}
	if !ring.Due(now) {
		return ring, nil
	}
	if err := st.Lock(ctx, assertionKeysKey); err != nil {
		return nil, err
	}
	defer st.Unlock(ctx, assertionKeysKey) //nolint:errcheck // nothing to do if unlocking fails
	if ring, err = read(); err != nil {
		return nil, err
	}
	changed, err := ring.Rotate(now)
	if err != nil || !changed {
		return ring, err
	}
	data, err := ring.Marshal()
	if err != nil {
		return nil, err
	}
	return ring, st.Store(ctx, assertionKeysKey, data)
}

// refresh re-reads the keys every quarter of the lead time, so a key
// another node made is published here before it signs.
func (s *assertionSigner) refresh(ctx caddy.Context) {
	tick := time.NewTicker(assertionLead / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			ring, err := s.currentKeys(ctx)
			if err == nil {
				err = s.publish(ring)
			}
			if err != nil {
				s.log.Error("assertion keys not refreshed; the current ones go on signing", zap.Error(err))
				continue
			}
			s.minter.SetRing(ring)
		}
	}
}

// The amr values (RFC 8176) of a session's Method: a code is "otp" (the
// minter's default, for Method ""), a passkey "pop" (proof of possession of
// a key), an identity provider's "fed" (federated, as Entra says it), with
// the provider in idp. Built once: this runs on every request.
var (
	passkeyMethods   = []string{"pop"}
	federatedMethods = []string{"fed"}
)

func methodsOf(method string) []string {
	switch {
	case method == flow.MethodPasskey:
		return passkeyMethods
	case strings.HasPrefix(method, federatedPrefix):
		return federatedMethods
	}
	return nil
}

// providerOf is the provider of an identity provider's session, else "".
func providerOf(method string) string {
	name, _ := strings.CutPrefix(method, federatedPrefix)
	if name == method {
		return ""
	}
	return name
}

// sign is the assertion of a session passing to the backend, issued by
// issuer (the tenant root's absolute URL). A session's assertion is minted
// once and remembered while it is valid.
func (s *assertionSigner) sign(issuer string, t tenant, sess flow.Session, guest directory.Guest) (string, error) {
	return s.minter.Mint(assertion.Claims{
		Issuer:    issuer,
		Audience:  s.audience,
		Subject:   sess.Email,
		Email:     sess.Email,
		Tenant:    t.ID,
		SessionID: sess.ID,
		Status:    string(guest.Status),
		Methods:   methodsOf(sess.Method),
		IDP:       providerOf(sess.Method),
		AuthTime:  sess.IssuedAt,
	}, s.clock.Now())
}

// getJWKS publishes the public keys of the assertions; backends may cache
// them for a few minutes (new keys appear an hour before they sign).
func (g *Gateway) getJWKS(w http.ResponseWriter, r *http.Request, t tenant) {
	st := g.assertion
	if st == nil {
		// The site's first gateway has none; a route's gateway after it, for
		// the same tenant, may: its keys are this tenant's.
		st = assertionOfTenant(r, t)
	}
	if st == nil {
		g.pages.errorPage(w, r, t, http.StatusNotFound, templates.NotFoundTitle, templates.NotFoundText, nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(*st.jwks.Load())
}

// headerName is the header that carries the assertion; "" without one.
func (c *AssertionConfig) headerName() string {
	if c == nil {
		return ""
	}
	return cmp.Or(c.Header, defaultAssertionHeader)
}

// assertionOfTenant is the assertion state of a loaded gateway that signs
// assertions for tenant t of r, or nil.
func assertionOfTenant(r *http.Request, t tenant) *assertionSigner {
	for _, o := range gateways.loaded() {
		if o.assertion == nil {
			continue
		}
		if ot, err := o.resolveTenant(r); err == nil && ot.Key == t.Key {
			return o.assertion
		}
	}
	return nil
}

// unmarshalAssertion reads `assertion { header NAME; audience AUD...; ttl D; rotate D }`.
func (g *Gateway) unmarshalAssertion(d *caddyfile.Dispenser) error {
	c := &AssertionConfig{}
	g.Assertion = c
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		var err error
		switch {
		case opt == "header" && len(args) == 1:
			c.Header = args[0]
		case opt == "audience" && len(args) > 0:
			c.Audience = append(c.Audience, args...)
		case opt == "ttl" && len(args) == 1:
			c.TTL, err = parsePositiveDuration(opt, args[0])
		case opt == "rotate" && len(args) == 1:
			c.Rotate, err = parsePositiveDuration(opt, args[0])
		default:
			return d.Errf("assertion: %s %v: use header <name>, audience <name...>, ttl <duration>, rotate <duration>", opt, args)
		}
		if err != nil {
			return d.Errf("assertion: %v", err)
		}
	}
	return nil
}
