package flow

import (
	"context"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// MethodPasskey is a Session's Method after a passkey sign-in; a code
// sign-in leaves Method empty.
const MethodPasskey = "passkey"

// PasskeySignIn decides a passkey sign-in of email in tenant, after the
// WebAuthn checks passed: the guest and the passkey still stand, and the
// policy lets the address in exactly as at a code sign-in. It records the
// use (the counter only goes forward: directory.ErrPasskeyCloned) and
// returns the new session. A revoked guest gets directory.ErrRevoked.
func (s *Service) PasskeySignIn(ctx context.Context, tenant, email string, use directory.PasskeyUse) (Session, error) {
	now := s.cfg.Clock.Now()
	_, err := s.cfg.Guests.RecordPasskeySignIn(ctx, tenant, email, use, now, func(g directory.Guest, pk directory.Passkey) error {
		switch {
		case g.Status == directory.Revoked:
			return directory.ErrRevoked
		case !g.PasskeyValid(pk):
			return ErrPasskeyVoid
		case !s.admitsAt(g, now):
			return ErrNotPermitted
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return s.newSession(tenant, email, MethodPasskey, now), nil
}

// FederatedSignIn decides a sign-in that an identity provider vouched for
// (the adapter checked the provider's answer): the address meets the same
// policy as at a code sign-in, and the session's Method (and the guest's
// source) is method, "oidc:<provider>". A non-zero notAfter ends the
// session then if that is sooner than the session TTL (the provider's own
// token expiry, where the operator asks for it). needsConsent is as
// Verify's.
func (s *Service) FederatedSignIn(ctx context.Context, tenant, email, method string, notAfter time.Time) (sess Session, needsConsent bool, err error) {
	now := s.cfg.Clock.Now()
	ok, err := s.mayGetCode(ctx, tenant, email, now)
	if err != nil {
		return Session{}, false, err
	}
	if !ok {
		return Session{}, false, ErrNotPermitted
	}
	sess = s.newSession(tenant, email, method, now)
	if !notAfter.IsZero() && notAfter.Unix() < sess.ExpiresAt {
		sess.ExpiresAt = max(notAfter.Unix(), sess.IssuedAt)
	}
	needsConsent, err = s.admit(ctx, sess)
	return sess, needsConsent, err
}
