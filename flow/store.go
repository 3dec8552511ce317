package flow

import (
	"context"
	"errors"
	"time"
)

// ErrChallengeNotFound means a challenge is unknown, expired, used or superseded:
// from the guest's side all four mean "get a new code".
var ErrChallengeNotFound = errors.New("challenge not found")

// Challenge is a pending code: everything needed to check a guess except the code.
type Challenge struct {
	ID          string
	Tenant      string
	Email       string
	CodeHash    []byte // HMAC of the code, see hashCode
	Resource    string // the local path the guest asked for, shown in the email
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Attempts    int // wrong guesses so far
	MaxAttempts int
	Delivery    DeliveryState
	// Scope is what the limits about the address count this challenge's
	// wrong tries under (see limitScope); "" is the identity tag.
	Scope string
}

// TriesLeft is how many wrong guesses the challenge survives.
func (c Challenge) TriesLeft() int { return max(c.MaxAttempts-c.Attempts, 0) }

// AttemptResult is what a store decided about one guess.
type AttemptResult uint8

const (
	// AttemptMatched: the guess was right; the challenge is now deleted.
	AttemptMatched AttemptResult = iota + 1
	// AttemptMismatched: wrong guess, counted; the challenge lives on.
	AttemptMismatched
	// AttemptExhausted: wrong guess that used the last try; the challenge is deleted.
	AttemptExhausted
	// AttemptGone: no such live challenge (expired, used, superseded or never made).
	AttemptGone
)

// Store keeps pending challenges and session revocations. Every method that
// checks and changes state does both atomically, so parallel requests (on one
// node or many) can't use a code twice or go uncounted.
type Store interface {
	// SaveChallenge stores c and deletes the live challenge of the same
	// tenant, address and browser (ChallengeKeyOf), so only a browser's
	// newest code works; other browsers' codes stay.
	SaveChallenge(ctx context.Context, c Challenge) error
	// CancelChallenge deletes challenge id if it is live; anything else is
	// left alone.
	CancelChallenge(ctx context.Context, id string, now time.Time) error
	// LoadChallenge returns a live challenge or ErrChallengeNotFound.
	LoadChallenge(ctx context.Context, id string, now time.Time) (Challenge, error)
	// AttemptChallenge compares codeHash with the challenge's in constant time;
	// a match deletes the challenge, a miss counts a try and deletes it at the
	// last one. The returned Challenge is the state after the attempt.
	AttemptChallenge(ctx context.Context, id string, codeHash []byte, now time.Time) (AttemptResult, Challenge, error)
	// SetDelivery records the delivery state of a live challenge; a challenge
	// that is gone is not an error.
	SetDelivery(ctx context.Context, id string, state DeliveryState) error
	// RevokeSession records that session id is no longer valid, until its expiry.
	RevokeSession(ctx context.Context, id string, until time.Time) error
	// SessionRevoked reports whether session id was revoked.
	SessionRevoked(ctx context.Context, id string, now time.Time) (bool, error)

	// Count adds one to the counter key in its fixed window (which starts at
	// the first count) and returns the new count and when the window ends.
	Count(ctx context.Context, key string, window time.Duration, now time.Time) (n int, resets time.Time, err error)
	// Peek returns counter key's count and when its window ends, without
	// counting (0 when no window is open at now): for explaining, not deciding.
	Peek(ctx context.Context, key string, now time.Time) (n int, resets time.Time, err error)
	// ResetCount forgets counter key.
	ResetCount(ctx context.Context, key string) error
	// SetFlag raises flag key until the given time.
	SetFlag(ctx context.Context, key string, until time.Time) error
	// Flag reports whether flag key is raised at now, and until when.
	Flag(ctx context.Context, key string, now time.Time) (until time.Time, raised bool, err error)
	// FirstFlag reports the first of keys (in their order) raised at now,
	// and until when; index -1 when none is. A networked store asks about
	// all of them in one round trip: the send step checks four.
	FirstFlag(ctx context.Context, keys []string, now time.Time) (index int, until time.Time, err error)

	// SaveCeremony keeps a passkey ceremony's state under id until the
	// given time, so the node that finishes it need not be the one that
	// began it.
	SaveCeremony(ctx context.Context, id string, state []byte, until time.Time) error
	// TakeCeremony returns ceremony id's state and deletes it in one atomic
	// step, so a ceremony finishes at most once; ErrChallengeNotFound when
	// it is unknown, expired or taken.
	TakeCeremony(ctx context.Context, id string, now time.Time) ([]byte, error)
}
