package flow

import (
	"errors"
	"fmt"
	"time"
)

// Errors a Service returns; the HTTP layer maps each to a page. The store's
// are beside the Store (ErrChallengeNotFound) and the queue's beside the
// Dispatcher (ErrBusy).
var (
	ErrWrongTenant    = errors.New("session belongs to another tenant")
	ErrSessionExpired = errors.New("session expired")
	ErrSessionRevoked = errors.New("session was signed out")
	// ErrNotPermitted: with RevealDenied, the address may not sign in.
	ErrNotPermitted = errors.New("this address may not sign in here")
	// ErrRateLimited is wrapped by the RateLimitError that Send returns when
	// a limit that is not about the address (client IP, tenant) is reached.
	ErrRateLimited = errors.New("too many codes requested")
	// ErrNotMeUsed: the "this wasn't me" link of that code was used already.
	ErrNotMeUsed = errors.New("this link was used already")
	// ErrPasskeyVoid: the passkey was made before the guest's sessions were
	// last cut (a reset or revocation), or the guest is not redeemed.
	ErrPasskeyVoid = errors.New("the passkey no longer signs this guest in: sign in with a code")
)

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
