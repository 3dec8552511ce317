package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// SendRequest asks for a code to be mailed.
type SendRequest struct {
	Tenant    string
	Email     string // as typed
	Resource  string // local path the guest wants, for the email
	Host      string // the site's host name, for the one-time-code autofill line
	Base      string // the absolute URL of the gateway's endpoints, for links in the email
	Language  string // the guest's Accept-Language, for the email's language
	ClientIP  string
	UserAgent string
	// Browser is an opaque value only the asking browser holds (its
	// pending cookie's nonce): each browser has its own live code.
	Browser string
	// Devices are the browser's device markers: each names the identity
	// tags of addresses that signed in with it before. Asking for one of
	// those, the browser has limits of its own (see limitScope). A request
	// may carry more than one (a sibling host can toss its own), so each is
	// looked at and none hides another.
	Devices []Device
	// AfterAnswer, if set, is closed by the caller once the guest has been
	// answered: delivery starts then (see Envelope.AfterAnswer).
	AfterAnswer <-chan struct{}
}

// Device is one device marker as the browser presented it.
type Device struct {
	ID   string
	Tags []string // identity tags (IdentityTag) of addresses that signed in with it
}

// SendResult describes the challenge made. Permitted is for logs only: the
// guest must see the same thing either way, so the policy can't be probed.
// Held, if set, means no code was made because of a limit about the address
// (cooldown, back-off, lock, "this wasn't me", per-address rate) until then:
// the guest is answered as after a send, with a note when to ask again, for
// allowed and denied addresses alike.
type SendResult struct {
	Challenge Challenge
	Email     string
	Permitted bool
	Held      time.Time
	HeldWhy   string // for logs
}

// Send makes a challenge for the address and queues its code email. An
// address the policy does not permit gets a decoy challenge that no code opens
// and a decoy envelope that sends nothing, so both paths look alike from
// outside. Errors: ErrInvalidAddress (wrapped, with a reason for the guest),
// ErrBusy (the queue is full), or a store error.
func (s *Service) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	addr, err := ParseAddress(req.Email)
	if err != nil {
		return SendResult{}, err
	}
	now := s.cfg.Clock.Now()
	tag := IdentityTag(req.Tenant, addr)
	scope := limitScope(tag, req)
	if held, why, err := s.checkLimits(ctx, req, tag, scope, now); err != nil {
		return SendResult{}, err
	} else if !held.IsZero() {
		return SendResult{Email: addr, Held: held, HeldWhy: why}, nil
	}
	ch := Challenge{
		ID:          newChallengeID(tag, req.Browser),
		Tenant:      req.Tenant,
		Email:       addr,
		Resource:    req.Resource,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.cfg.CodeTTL),
		MaxAttempts: s.cfg.MaxAttempts,
		Delivery:    DeliveryQueued,
	}
	if scope != tag {
		// Only a known device's own scope is kept: the identity tag, the
		// usual scope, is in the id already (and in memory on every
		// pending challenge).
		ch.Scope = scope
	}
	permitted, err := s.mayGetCode(ctx, req.Tenant, addr, now)
	if err != nil {
		return SendResult{}, err
	}
	if !permitted && s.cfg.RevealDenied {
		return SendResult{Email: addr}, ErrNotPermitted
	}
	// The code and its email are made for every address, and thrown away
	// for one that may not sign in: the answer takes the same time either
	// way, so its timing can't tell the policy.
	code, err := newCode(s.cfg.CodeLength)
	if err != nil {
		return SendResult{}, err
	}
	msg, err := s.cfg.Compose(CodeMail{
		ChallengeID: ch.ID,
		To:          addr,
		Code:        code,
		Tenant:      req.Tenant,
		Resource:    req.Resource,
		Host:        req.Host,
		Base:        req.Base,
		Language:    req.Language,
		ClientIP:    req.ClientIP,
		UserAgent:   req.UserAgent,
		ExpiresIn:   s.cfg.CodeTTL,
		ExpiresAt:   ch.ExpiresAt,
	})
	if err != nil {
		return SendResult{}, fmt.Errorf("rendering the code email: %w", err)
	}
	ch.CodeHash = hashCode(s.codeKey, req.Tenant, ch.ID, code)
	env := Envelope{ChallengeID: ch.ID, Tenant: req.Tenant, Message: msg, AfterAnswer: req.AfterAnswer}
	if !permitted {
		ch.CodeHash = []byte(randomID()) // matches no code's HMAC
		env = Envelope{ChallengeID: ch.ID, Tenant: req.Tenant, Decoy: true, AfterAnswer: req.AfterAnswer}
	}
	// Saved before dispatch, so the queue always finds the challenge to
	// record its delivery on.
	if err := s.cfg.Store.SaveChallenge(ctx, ch); err != nil {
		return SendResult{}, fmt.Errorf("saving the challenge: %w", err)
	}
	if err := s.cfg.Dispatcher.Dispatch(ctx, env); err != nil {
		return SendResult{}, err
	}
	if l := s.cfg.Limits.Cooldown; l > 0 {
		if err := s.cfg.Store.SetFlag(ctx, keyCooldown+scope, now.Add(l)); err != nil {
			return SendResult{}, err
		}
	}
	return SendResult{Challenge: ch, Email: addr, Permitted: permitted}, nil
}

// NotMe handles "this wasn't me" from the code email of challenge id, which
// the link carries: that challenge, if still live, is cancelled, and no code
// goes to the address for Limits.NotMeFor. A link works once (within
// valid, the link's own lifetime), and cancels no other code: a stranger's
// old email can't be used to cancel the owner's newer code again and again.
func (s *Service) NotMe(ctx context.Context, tenant, addr, id string, valid time.Duration) (time.Time, error) {
	now := s.cfg.Clock.Now()
	tag := IdentityTag(tenant, addr)
	if idTag, ok := IdentityTagOf(id); !ok || idTag != tag {
		return time.Time{}, ErrChallengeNotFound
	}
	if n, _, err := s.cfg.Store.Count(ctx, keyNotMeUsed+id, valid, now); err != nil {
		return time.Time{}, err
	} else if n > 1 {
		return time.Time{}, ErrNotMeUsed
	}
	if err := s.cfg.Store.CancelChallenge(ctx, id, now); err != nil {
		return time.Time{}, err
	}
	until := now.Add(s.cfg.Limits.NotMeFor)
	return until, s.cfg.Store.SetFlag(ctx, keyNotMe+tag, until)
}

// mayGetCode decides who gets a real code: the guest's record, if any,
// must not be revoked, and the policy must admit them (AdmitsGuest).
func (s *Service) mayGetCode(ctx context.Context, tenant, addr string, now time.Time) (bool, error) {
	g, err := s.cfg.Guests.Get(ctx, tenant, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		g = directory.Guest{Tenant: tenant, Email: addr}
	case err != nil:
		return false, fmt.Errorf("reading the guest directory: %w", err)
	case g.Status == directory.Revoked:
		return false, nil
	}
	return s.admitsAt(g, now), nil
}
