package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// Pending returns the live challenge id of tenant, or ErrChallengeNotFound.
func (s *Service) Pending(ctx context.Context, tenant, id string) (Challenge, error) {
	ch, err := s.cfg.Store.LoadChallenge(ctx, id, s.cfg.Clock.Now())
	if err != nil {
		return Challenge{}, err
	}
	if ch.Tenant != tenant {
		return Challenge{}, ErrChallengeNotFound
	}
	return ch, nil
}

// Outcome is the result of a Verify.
type Outcome uint8

const (
	// Verified: the code was right; Result.Session is the new session.
	Verified Outcome = iota + 1
	// WrongCode: the code was wrong; Result.TriesLeft more guesses are allowed.
	WrongCode
	// Malformed: not a code of the right length and digits; no try was used.
	Malformed
	// Locked: the last try was wrong; the code is dead.
	Locked
	// Expired: no live challenge (expired, used, superseded or unknown).
	Expired
)

func (o Outcome) String() string {
	return [...]string{"", "verified", "wrong code", "malformed code", "locked", "expired"}[o]
}

// VerifyResult is what Verify decided.
type VerifyResult struct {
	Outcome   Outcome
	TriesLeft int
	Email     string
	Session   Session
	Challenge Challenge // the state after the attempt
	// NeedsConsent: the session may only be issued through Redeem, after the
	// guest agreed; nothing was recorded yet.
	NeedsConsent bool
}

// Verify checks a typed code against the challenge id of tenant. The code is
// single use even under parallel submissions: the store deletes the challenge
// in the same atomic step that matches it.
func (s *Service) Verify(ctx context.Context, tenant, id, typed string) (VerifyResult, error) {
	code, ok := normalizeCode(typed, s.cfg.CodeLength)
	if !ok {
		ch, err := s.Pending(ctx, tenant, id)
		if errors.Is(err, ErrChallengeNotFound) {
			return VerifyResult{Outcome: Expired}, nil
		} else if err != nil {
			return VerifyResult{}, err
		}
		return VerifyResult{Outcome: Malformed, TriesLeft: ch.TriesLeft(), Email: ch.Email, Challenge: ch}, nil
	}
	now := s.cfg.Clock.Now()
	// The tenant is inside the HMAC, so another tenant's challenge never matches.
	result, ch, err := s.cfg.Store.AttemptChallenge(ctx, id, hashCode(s.codeKey, tenant, id, code), now)
	if err != nil {
		return VerifyResult{}, err
	}
	res := VerifyResult{TriesLeft: ch.TriesLeft(), Email: ch.Email, Challenge: ch}
	switch result {
	case AttemptMatched:
		res.Outcome = Verified
		res.Session = s.newSession(ch.Tenant, ch.Email, "", now)
		needsConsent, err := s.admit(ctx, res.Session)
		if errors.Is(err, directory.ErrRevoked) {
			return VerifyResult{Outcome: Expired}, nil
		} else if err != nil {
			return VerifyResult{}, err
		}
		if needsConsent {
			res.NeedsConsent = true
			return res, nil
		}
		if ch.Scope != "" && ch.Scope != IdentityTag(ch.Tenant, ch.Email) {
			if err := s.cfg.Store.ResetCount(ctx, keyFail+ch.Scope); err != nil {
				return VerifyResult{}, err
			}
		}

	case AttemptMismatched:
		res.Outcome = WrongCode
	case AttemptExhausted:
		res.Outcome = Locked
	default:
		res.Outcome = Expired
	}
	if res.Outcome == WrongCode || res.Outcome == Locked {
		if err := s.countFailure(ctx, ch, res.Outcome == Locked, now); err != nil {
			return VerifyResult{}, err
		}
	}
	return res, nil
}

// newSession is a session of email in tenant issued at now, signed in by
// method ("" for a code).
func (s *Service) newSession(tenant, email, method string, now time.Time) Session {
	return Session{
		ID: randomID(), Tenant: tenant, Email: email, Method: method,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(s.cfg.SessionTTL).Unix(),
	}
}

// admit redeems a session whose guest proved who they are, unless the
// guest must agree first (consent on, or their invitation asks it; not
// redeemed yet): then nothing is recorded and needsConsent says so. A
// revoked guest is directory.ErrRevoked.
func (s *Service) admit(ctx context.Context, sess Session) (needsConsent bool, err error) {
	g, err := s.cfg.Guests.Get(ctx, sess.Tenant, sess.Email)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return false, fmt.Errorf("reading the guest directory: %w", err)
	}
	known := err == nil
	if (s.cfg.Consent || known && g.AskConsent) && (!known || g.Status != directory.Redeemed) {
		return true, nil
	}
	_, err = s.Redeem(ctx, sess)
	return false, err
}
