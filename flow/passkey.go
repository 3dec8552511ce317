package flow

import (
	"context"

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
