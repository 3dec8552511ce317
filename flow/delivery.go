package flow

import (
	"context"
	"errors"
	"time"
)

// DeliveryState is how far the code email of a challenge has got.
type DeliveryState uint8

const (
	// DeliveryQueued: waiting for its first attempt.
	DeliveryQueued DeliveryState = iota
	// DeliverySent: the mail server or API accepted the message.
	DeliverySent
	// DeliveryRetrying: an attempt failed for a reason that may pass; another follows.
	DeliveryRetrying
	// DeliveryFailed: given up; the guest needs a new code or another address.
	DeliveryFailed
)

func (d DeliveryState) String() string {
	return [...]string{"queued", "sent", "retrying", "failed"}[d]
}

// DeliveryView is what a guest may be told of a code's delivery.
type DeliveryView string

const (
	ViewOnItsWay DeliveryView = "on_its_way" // queued or sent: they look alike
	ViewRetrying DeliveryView = "retrying"   // the mailer failed for now; trying again
	ViewFailed   DeliveryView = "failed"     // given up: a new code is the way on
)

// View is the state as a guest may see it. Queued and sent look alike: a
// decoy for an address that may not sign in is "sent" at once while a real
// code is "queued" for a moment, so showing the difference would tell who
// may sign in. Decoys fare as the last real message did, so "retrying" and
// "failed" tell nothing either.
func (d DeliveryState) View() DeliveryView {
	switch d {
	case DeliveryRetrying:
		return ViewRetrying
	case DeliveryFailed:
		return ViewFailed
	}
	return ViewOnItsWay
}

// ErrBusy means the delivery queue or a bounded store is full: the guest
// should try again shortly.
var ErrBusy = errors.New("too many codes are being sent right now")

// permanentError marks a delivery failure that retrying won't fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure no retry will fix (an SMTP 5xx reply, an
// API's 4xx). Unmarked errors count as temporary: a network error may pass.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Envelope is a code email on its way, with what the queue needs to record
// its fate on the challenge.
type Envelope struct {
	ChallengeID string
	Tenant      string
	Message     Message
	// Decoy envelopes belong to addresses that may not sign in: nothing is
	// sent, but they take the same path through the queue, and
	// each attempt fares as the mailer's last real attempt did, so the state
	// a guest sees does not tell allowed from denied addresses.
	Decoy bool
	// AfterAnswer, if set, is closed once the guest has been answered; the
	// first attempt waits for it (a second at most). The work that only a
	// real code costs (talking to the mailer) then never overlaps the
	// answer, whose timing could otherwise tell allowed from denied.
	AfterAnswer <-chan struct{}
}

// maxAnswerWait bounds how long a first attempt waits for AfterAnswer;
// answerSettle is the wait after it, for the answer's last bytes to leave
// this machine's CPUs (a mail server on the same host would otherwise still
// compete with them).
const (
	maxAnswerWait = time.Second
	answerSettle  = 3 * time.Millisecond
)

// WaitForAnswer blocks until e's answer is out, maxAnswerWait passes or
// done is closed.
func (e Envelope) WaitForAnswer(done <-chan struct{}) {
	if e.AfterAnswer == nil {
		return
	}
	t := time.NewTimer(maxAnswerWait)
	defer t.Stop()
	select {
	case <-e.AfterAnswer:
	case <-t.C:
	case <-done:
		return
	}
	select {
	case <-time.After(answerSettle):
	case <-done:
	}
}

// Dispatcher takes envelopes for delivery, e.g. a queue in front of a Mailer.
type Dispatcher interface {
	// Dispatch accepts e or returns ErrBusy; it does not wait for delivery.
	Dispatch(ctx context.Context, e Envelope) error
}

// DispatcherFunc adapts a function to Dispatcher.
type DispatcherFunc func(ctx context.Context, e Envelope) error

// Dispatch calls f.
func (f DispatcherFunc) Dispatch(ctx context.Context, e Envelope) error { return f(ctx, e) }
