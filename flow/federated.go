package flow

import (
	"context"
	"time"
)

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
