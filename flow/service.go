package flow

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// Errors a Service returns; the HTTP layer maps each to a page.
var (
	ErrWrongTenant    = errors.New("session belongs to another tenant")
	ErrSessionExpired = errors.New("session expired")
	ErrSessionRevoked = errors.New("session was signed out")
)

// Config is what a Service needs. Durations and counts are validated by New.
type Config struct {
	CodeTTL     time.Duration
	SessionTTL  time.Duration
	CodeLength  int
	MaxAttempts int
	Policy      Policy
	Keys        *Keys
	Store       Store
	Dispatcher  Dispatcher
	Compose     Composer
	Clock       Clock // default SystemClock
	// Guests is the guest directory: invitations admit, revocations and
	// deletions end sessions, sign-ins are recorded. Required.
	Guests *directory.Directory
	// Consent asks a guest to agree before their first redemption.
	Consent bool
	// Limits bound how often codes are sent and guessed.
	Limits Limits
	// RevealDenied answers ErrNotPermitted for addresses that may not sign
	// in, instead of the decoy that makes them look like any other.
	RevealDenied bool
}

// ErrNotPermitted: with RevealDenied, the address may not sign in.
var ErrNotPermitted = errors.New("this address may not sign in here")

// Rate is N events per Window; N = 0 means no limit.
type Rate struct {
	N      int
	Window time.Duration
}

// Limits bound sending and guessing. Zero values turn a limit off.
type Limits struct {
	PerAddress Rate // codes per tenant and address
	PerIP      Rate // codes per client IPv4 address or IPv6 /64
	PerTenant  Rate // codes per tenant
	// Cooldown between two codes for one tenant and address.
	Cooldown time.Duration
	// After each dead code (MaxAttempts wrong tries), no new code for
	// BackoffBase, doubling with each further dead code up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// LockAfter consecutive wrong tries (within LockFor) stop codes to the
	// address for LockFor (NIST 800-63B 5.2.2: at most 100).
	LockAfter int
	LockFor   time.Duration
	// NotMeFor is how long codes stop after a guest reports "this wasn't me".
	NotMeFor time.Duration
}

// ErrRateLimited is wrapped by the RateLimitError that Send returns when a
// limit that is not about the address (client IP, tenant) is reached.
var ErrRateLimited = errors.New("too many codes requested")

// RateLimitError says until when a limit holds.
type RateLimitError struct {
	Scope string // "client IP" or "tenant"
	Until time.Time
}

func (e RateLimitError) Error() string {
	return fmt.Sprintf("%v from this %s until %s", ErrRateLimited, e.Scope, e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Service runs the sign-in state machine for one gateway configuration.
type Service struct {
	cfg     Config
	codeKey []byte
}

// CheckCodeLength says whether a code of n digits is allowed: at least the
// six NIST SP 800-63B asks for, at most what a guest can copy by eye.
func CheckCodeLength(n int) error {
	if n < 6 || n > 12 {
		return errors.New("use 6 to 12 digits (NIST SP 800-63B asks for at least 6)")
	}
	return nil
}

// CheckMaxAttempts says whether n wrong tries per code is allowed.
func CheckMaxAttempts(n int) error {
	if n < 1 || n > 100 {
		return errors.New("use 1 to 100")
	}
	return nil
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	lengthErr, attemptsErr := CheckCodeLength(cfg.CodeLength), CheckMaxAttempts(cfg.MaxAttempts)
	switch {
	case cfg.CodeTTL <= 0:
		return nil, errors.New("code TTL must be positive")
	case cfg.SessionTTL <= 0:
		return nil, errors.New("session TTL must be positive")
	case lengthErr != nil:
		return nil, fmt.Errorf("code length %d: %w", cfg.CodeLength, lengthErr)
	case attemptsErr != nil:
		return nil, fmt.Errorf("max attempts %d: %w", cfg.MaxAttempts, attemptsErr)
	case cfg.Keys == nil || cfg.Store == nil || cfg.Dispatcher == nil || cfg.Compose == nil || cfg.Guests == nil:
		return nil, errors.New("keys, store, dispatcher, composer and guest directory are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	return &Service{cfg: cfg, codeKey: cfg.Keys.MAC("code")}, nil
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.cfg.Clock.Now() }

// SessionTTL is how long a new session lasts.
func (s *Service) SessionTTL() time.Duration { return s.cfg.SessionTTL }

// CodeLength is the number of digits in a code.
func (s *Service) CodeLength() int { return s.cfg.CodeLength }

// CodeTTL is how long a code works.
func (s *Service) CodeTTL() time.Duration { return s.cfg.CodeTTL }

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

// limitScope is what the limits about an address count and hold: the
// identity tag for a browser in which the address never signed in (any
// stranger's), or the tag and the device for one in which it did. A
// stranger who knows an address can then use up the strangers' quota, or
// set off back-off and lock with wrong codes, and the owner still signs in
// from a browser they used before. The marker proves nothing about identity:
// it only keeps the owner's quota apart from strangers'.
func limitScope(tag string, req SendRequest) string {
	for _, d := range req.Devices {
		if d.ID != "" && slices.Contains(d.Tags, tag) {
			return tag + ":" + d.ID
		}
	}
	return tag
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
	permitted, err := s.admits(ctx, req.Tenant, addr, now)
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

// checkLimits applies the sending limits. Limits about the client or the
// tenant are errors (a page that says nothing about the address); limits
// about the address hold the send quietly. All are counted before the
// policy is asked, so they fall alike on every address.
func (s *Service) checkLimits(ctx context.Context, req SendRequest, tag, scope string, now time.Time) (time.Time, string, error) {
	l := s.cfg.Limits
	loud := []struct {
		rate       Rate
		key, scope string
		applies    bool
	}{
		{l.PerIP, keySendIP + clientNetwork(req.ClientIP), "client IP", req.ClientIP != ""},
		{l.PerTenant, keySendTenant + req.Tenant, "tenant", true},
	}
	for _, c := range loud {
		if c.rate.N <= 0 || !c.applies {
			continue
		}
		n, resets, err := s.cfg.Store.Count(ctx, c.key, c.rate.Window, now)
		if err != nil {
			return time.Time{}, "", err
		}
		if n > c.rate.N {
			return time.Time{}, "", RateLimitError{Scope: c.scope, Until: resets}
		}
	}
	// Holds, in the order they are named to the guest; one question to
	// the store.
	holds := []string{keyNotMe, keyLock, keyBackoff, keyCooldown}
	if scope != tag {
		holds = holds[1:] // "this wasn't me" stops strangers' codes, not the owner's browser
	}
	keys := make([]string, len(holds))
	for i, f := range holds {
		keys[i] = f + scope
	}
	i, until, err := s.cfg.Store.FirstFlag(ctx, keys, now)
	if err != nil {
		return time.Time{}, "", err
	}
	if i >= 0 {
		return until, strings.TrimSuffix(holds[i], ":"), nil
	}
	if l.PerAddress.N > 0 {
		n, resets, err := s.cfg.Store.Count(ctx, keySendAddr+scope, l.PerAddress.Window, now)
		if err != nil {
			return time.Time{}, "", err
		}
		if n > l.PerAddress.N {
			return resets, "per-address limit", nil
		}
	}
	return time.Time{}, "", nil
}

// countFailure records a wrong try against the guest across codes: a dead
// code starts a back-off, doubling with each; LockAfter in a row lock the
// address for LockFor.
func (s *Service) countFailure(ctx context.Context, ch Challenge, dead bool, now time.Time) error {
	l := s.cfg.Limits
	if l.LockAfter <= 0 {
		return nil
	}
	scope := ch.Scope
	if scope == "" {
		scope = IdentityTag(ch.Tenant, ch.Email)
	}
	n, _, err := s.cfg.Store.Count(ctx, keyFail+scope, l.LockFor, now)
	if err != nil {
		return err
	}
	if n >= l.LockAfter {
		return s.cfg.Store.SetFlag(ctx, keyLock+scope, now.Add(l.LockFor))
	}
	if dead && l.BackoffBase > 0 {
		wait := l.BackoffBase
		for k := n / max(ch.MaxAttempts, 1); k > 1 && wait < l.BackoffMax; k-- {
			wait *= 2
		}
		if l.BackoffMax > 0 {
			wait = min(wait, l.BackoffMax)
		}
		return s.cfg.Store.SetFlag(ctx, keyBackoff+scope, now.Add(wait))
	}
	return nil
}

// ErrNotMeUsed: the "this wasn't me" link of that code was used already.
var ErrNotMeUsed = errors.New("this link was used already")

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

// admits decides who gets a real code: not blocked, not revoked, and allowed
// by the list or invited.
func (s *Service) admits(ctx context.Context, tenant, addr string, now time.Time) (bool, error) {
	if s.cfg.Policy.Blocked(addr) {
		return false, nil
	}
	g, err := s.cfg.Guests.Get(ctx, tenant, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return s.cfg.Policy.Allowed(addr), nil
	case err != nil:
		return false, fmt.Errorf("reading the guest directory: %w", err)
	case g.Status == directory.Revoked:
		return false, nil
	}
	return s.cfg.Policy.Allowed(addr) || g.Invitation(now), nil
}

// Admits reports whether this configuration's lists and the guest's
// invitation let the guest in: the per-route check for a signed-in guest.
func (s *Service) Admits(g directory.Guest) bool {
	if s.cfg.Policy.Blocked(g.Email) {
		return false
	}
	return s.cfg.Policy.Allowed(g.Email) || g.Invitation(s.cfg.Clock.Now())
}

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
		res.Session = Session{
			ID:        randomID(),
			Tenant:    ch.Tenant,
			Email:     ch.Email,
			IssuedAt:  now.Unix(),
			ExpiresAt: now.Add(s.cfg.SessionTTL).Unix(),
		}
		if s.cfg.Consent {
			g, err := s.cfg.Guests.Get(ctx, ch.Tenant, ch.Email)
			if err != nil && !errors.Is(err, directory.ErrNotFound) {
				return VerifyResult{}, fmt.Errorf("reading the guest directory: %w", err)
			}
			if err != nil || g.Status != directory.Redeemed {
				res.NeedsConsent = true
				return res, nil
			}
		}
		if _, err := s.Redeem(ctx, res.Session); errors.Is(err, directory.ErrRevoked) {
			return VerifyResult{Outcome: Expired}, nil
		} else if err != nil {
			return VerifyResult{}, err
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

// Redeem records a sign-in in the guest directory (redeeming an invitation)
// and returns the guest's record. A revoked guest gets directory.ErrRevoked.
func (s *Service) Redeem(ctx context.Context, sess Session) (directory.Guest, error) {
	g, err := s.cfg.Guests.RecordSignIn(ctx, sess.Tenant, sess.Email, s.cfg.Clock.Now())
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
	IssuedAt  int64  `json:"a"` // Unix seconds
	ExpiresAt int64  `json:"x"` // Unix seconds
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
