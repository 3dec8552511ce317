package flow

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// AdmitsGuest reports whether this configuration's lists and the guest's
// invitation let the guest in: the per-route check for a signed-in guest.
func (s *Service) AdmitsGuest(g directory.Guest) bool { return s.admitsAt(g, s.cfg.Clock.Now()) }

// admitsAt is the policy's answer for a guest at now: not blocked, and
// allowed by the list or invited.
func (s *Service) admitsAt(g directory.Guest, now time.Time) bool {
	p := s.policyOf(g.Tenant)
	return !p.Blocked(g.Email) && (p.Allowed(g.Email) || g.Invitation(now))
}

// policyOf is the policy of tenant.
func (s *Service) policyOf(tenant string) Policy {
	if p, ok := s.cfg.TenantPolicies[tenant]; ok {
		return p
	}
	return s.cfg.Policy
}

// Redeem records a sign-in in the guest directory (redeeming an invitation)
// and returns the guest's record. A revoked guest gets directory.ErrRevoked.
func (s *Service) Redeem(ctx context.Context, sess Session) (directory.Guest, error) {
	g, err := s.cfg.Guests.RecordSignIn(ctx, sess.Tenant, sess.Email, cmp.Or(sess.Method, directory.SourceOTP), s.cfg.Clock.Now())
	if err != nil {
		return g, err
	}
	// A success ends the run of wrong tries.
	return g, s.cfg.Store.ResetCount(ctx, keyFail+IdentityTag(sess.Tenant, sess.Email))
}

// Authenticate checks a decoded session for tenant: right tenant, not past its
// absolute expiry (nor past the configured TTL from issue, should the TTL have
// been shortened), not signed out, and its guest neither deleted nor revoked
// since. It returns the guest's record. A store error fails closed.
func (s *Service) Authenticate(ctx context.Context, tenant string, sess Session) (directory.Guest, error) {
	if sess.Tenant != tenant {
		return directory.Guest{}, ErrWrongTenant
	}
	now := s.cfg.Clock.Now()
	if now.Unix() >= sess.ExpiresAt || now.Unix() >= sess.IssuedAt+int64(s.cfg.SessionTTL/time.Second)+1 {
		return directory.Guest{}, ErrSessionExpired
	}
	revoked, err := s.cfg.Store.SessionRevoked(ctx, sess.ID, now)
	if err != nil {
		return directory.Guest{}, fmt.Errorf("checking revocation: %w", err)
	}
	if revoked {
		return directory.Guest{}, ErrSessionRevoked
	}
	g, err := s.cfg.Guests.Get(ctx, tenant, sess.Email)
	if errors.Is(err, directory.ErrNotFound) {
		return directory.Guest{}, ErrSessionRevoked // the guest was deleted
	}
	if err != nil {
		return directory.Guest{}, fmt.Errorf("reading the guest directory: %w", err)
	}
	if !g.SessionValid(time.Unix(sess.IssuedAt, 0)) {
		return directory.Guest{}, ErrSessionRevoked
	}
	return g, nil
}

// SignOut revokes the session everywhere the store is shared.
func (s *Service) SignOut(ctx context.Context, sess Session) error {
	return s.cfg.Store.RevokeSession(ctx, sess.ID, time.Unix(sess.ExpiresAt, 0))
}

// Session is a signed-in guest. It lives in a sealed cookie, not on the server.
type Session struct {
	ID        string `json:"i"`
	Tenant    string `json:"t"`
	Email     string `json:"e"`
	Method    string `json:"m,omitempty"` // how the guest signed in: "" for a code, MethodPasskey
	IssuedAt  int64  `json:"a"`           // Unix seconds
	ExpiresAt int64  `json:"x"`           // Unix seconds
}

// Expiry is ExpiresAt as a time.
func (s Session) Expiry() time.Time { return time.Unix(s.ExpiresAt, 0).UTC() }

// randomID returns 128 random bits, URL-safe.
func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// RandomToken is randomID for callers outside the package (nonces).
func RandomToken() string { return randomID() }
