// Package delivery is the bounded queue between the sign-in page and a
// flow.Mailer: Dispatch returns at once, a pool of workers delivers, retries
// temporary failures with exponential backoff, gives up on permanent ones,
// and records every envelope's fate on its challenge.
package delivery

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Recorder keeps the delivery state of challenges; a flow.Store is one.
type Recorder interface {
	SetDelivery(ctx context.Context, id string, state flow.DeliveryState) error
}

// Config tunes a Queue. Zero values take the defaults.
type Config struct {
	Mailer flow.Mailer // required
	Store  Recorder    // required: where delivery states are recorded
	// Workers sending at once. Default 4.
	Workers int
	// Capacity is how many envelopes may wait or be retried at once; past it
	// Dispatch answers flow.ErrBusy. Default 1000.
	Capacity int
	// MaxAttempts per envelope, the first included. Default 6.
	MaxAttempts int
	// FirstRetry is the wait after the first failure; each further wait
	// doubles, up to MaxRetry. Defaults 2s and 1m.
	FirstRetry, MaxRetry time.Duration
	// AttemptTimeout bounds one attempt. Default 30s.
	AttemptTimeout time.Duration
	// TroubleAfter consecutive failed attempts make Troubled true until the
	// next success. Default 3.
	TroubleAfter int
	// Report is told of every event; it must return quickly. May be nil.
	Report func(Report)
}

// Event is what happened to an envelope.
type Event uint8

// Events, in the order an envelope can meet them.
const (
	Queued Event = iota + 1
	Delivered
	Retrying
	Failed
)

func (e Event) String() string {
	return [...]string{"", "queued", "delivered", "retrying", "failed"}[e]
}

// Report describes one event.
type Report struct {
	Event    Event
	Envelope flow.Envelope
	Attempt  int           // 1 for the first attempt
	Err      error         // the attempt's error, for Retrying and Failed
	RetryIn  time.Duration // for Retrying
	StoreErr error         // recording the state on the challenge failed
	// Took is how long the mailer took with the attempt (zero for Queued
	// and for decoys, which no mailer sees).
	Took time.Duration
}

var errDecoyTrouble = errors.New("mail delivery is failing")

// ErrShutdown is the Err of envelopes given up because the queue was closed
// before they could be delivered.
var ErrShutdown = errors.New("the server shut down before the message could be delivered")

type job struct {
	env     flow.Envelope
	attempt int
	last    bool          // shutting down: no retry after this attempt
	took    time.Duration // the mailer's time on the last attempt
}

// Queue delivers envelopes. It implements flow.Dispatcher.
type Queue struct {
	cfg     Config
	jobs    chan job // buffered to Capacity, so a send into it never blocks
	sendCtx context.Context
	abort   context.CancelFunc // ends in-flight attempts at the shutdown deadline

	mu      sync.Mutex
	pending int // envelopes accepted and not yet finished
	closed  bool
	timers  map[*time.Timer]job
	drained chan struct{} // closed when closed && pending == 0

	workers  sync.WaitGroup
	failures atomic.Int32 // consecutive failed real attempts
}

// New starts a queue's workers.
func New(cfg Config) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1000
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.FirstRetry <= 0 {
		cfg.FirstRetry = 2 * time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = time.Minute
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	if cfg.TroubleAfter <= 0 {
		cfg.TroubleAfter = 3
	}
	q := &Queue{
		cfg:     cfg,
		jobs:    make(chan job, cfg.Capacity),
		timers:  make(map[*time.Timer]job),
		drained: make(chan struct{}),
	}
	q.sendCtx, q.abort = context.WithCancel(context.Background())
	for i := 0; i < cfg.Workers; i++ {
		q.workers.Add(1)
		go q.work()
	}
	return q
}

// Dispatch implements flow.Dispatcher.
func (q *Queue) Dispatch(_ context.Context, e flow.Envelope) error {
	q.mu.Lock()
	if q.closed || q.pending >= q.cfg.Capacity {
		q.mu.Unlock()
		return flow.ErrBusy
	}
	q.pending++
	q.jobs <- job{env: e, attempt: 1}
	q.mu.Unlock()
	q.report(Report{Event: Queued, Envelope: e})
	return nil
}

// Troubled reports whether the last TroubleAfter attempts all failed.
func (q *Queue) Troubled() bool {
	return int(q.failures.Load()) >= q.cfg.TroubleAfter
}

// Pending is the number of envelopes accepted and not yet finished.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

func (q *Queue) work() {
	defer q.workers.Done()
	for {
		select {
		case j := <-q.jobs:
			q.attempt(j)
		case <-q.drained:
			return
		}
	}
}

func (q *Queue) attempt(j job) {
	if j.attempt == 1 {
		j.env.WaitForAnswer(q.sendCtx.Done())
	}
	var err error
	if j.env.Decoy {
		// A decoy fares as the last real attempt did.
		if q.failures.Load() > 0 {
			err = errDecoyTrouble
		}
	} else {
		ctx, cancel := context.WithTimeout(q.sendCtx, q.cfg.AttemptTimeout)
		start := time.Now()
		err = q.cfg.Mailer.Send(ctx, j.env.Message)
		j.took = time.Since(start)
		cancel()
		if err == nil {
			q.failures.Store(0)
		} else {
			q.failures.Add(1)
		}
	}
	switch {
	case err == nil:
		q.finish(j, Delivered, flow.DeliverySent, nil)
	case q.sendCtx.Err() != nil:
		q.finish(j, Failed, flow.DeliveryFailed, ErrShutdown)
	case flow.IsPermanent(err) || j.attempt >= q.cfg.MaxAttempts || j.last:
		q.finish(j, Failed, flow.DeliveryFailed, err)
	default:
		q.retry(j, err)
	}
}

// Depth is how many envelopes the queue holds: waiting, being sent, or
// waiting for a retry.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// backoff is the wait after the n-th failed attempt.
func (q *Queue) backoff(n int) time.Duration {
	d := q.cfg.FirstRetry
	for i := 1; i < n && d < q.cfg.MaxRetry; i++ {
		d *= 2
	}
	return min(d, q.cfg.MaxRetry)
}

func (q *Queue) retry(j job, err error) {
	wait := q.backoff(j.attempt)
	storeErr := q.record(j.env, flow.DeliveryRetrying)
	q.report(Report{Event: Retrying, Envelope: j.env, Attempt: j.attempt, Err: err, RetryIn: wait, StoreErr: storeErr, Took: j.took})
	next := job{env: j.env, attempt: j.attempt + 1}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		// Shutting down: one last attempt now rather than a wait.
		next.last = true
		q.jobs <- next
		return
	}
	var t *time.Timer
	t = time.AfterFunc(wait, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if _, ok := q.timers[t]; ok {
			delete(q.timers, t)
			q.jobs <- next
		}
	})
	q.timers[t] = next
}

func (q *Queue) finish(j job, ev Event, state flow.DeliveryState, err error) {
	storeErr := q.record(j.env, state)
	q.report(Report{Event: ev, Envelope: j.env, Attempt: j.attempt, Err: err, StoreErr: storeErr, Took: j.took})
	q.mu.Lock()
	q.pending--
	if q.closed && q.pending == 0 {
		close(q.drained)
	}
	q.mu.Unlock()
}

func (q *Queue) record(e flow.Envelope, state flow.DeliveryState) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return q.cfg.Store.SetDelivery(ctx, e.ChallengeID, state)
}

func (q *Queue) report(r Report) {
	if q.cfg.Report != nil {
		q.cfg.Report(r)
	}
}

// Close stops taking envelopes and delivers what it holds: envelopes waiting
// for a retry get one last attempt at once. Whatever is not finished when ctx
// ends is reported Failed with ErrShutdown. Close returns when every
// envelope is accounted for.
func (q *Queue) Close(ctx context.Context) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.workers.Wait()
		return
	}
	q.closed = true
	for t, j := range q.timers {
		if t.Stop() {
			j.last = true
			q.jobs <- j
		}
		delete(q.timers, t)
	}
	if q.pending == 0 {
		close(q.drained)
	}
	q.mu.Unlock()

	select {
	case <-q.drained:
	case <-ctx.Done():
		// Out of time: end in-flight attempts (they finish as failures) and
		// give up on the envelopes nobody has picked up.
		q.abort()
		for {
			select {
			case j := <-q.jobs:
				q.finish(j, Failed, flow.DeliveryFailed, ErrShutdown)
				continue
			case <-q.drained:
			}
			break
		}
	}
	q.workers.Wait()
	q.abort()
}

var _ flow.Dispatcher = (*Queue)(nil)
