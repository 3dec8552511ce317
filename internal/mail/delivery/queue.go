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

	// Journal, if set, keeps every accepted envelope outside the process
	// until it is finished, so a crash loses none (see Journal).
	Journal Journal
	// Lease is how long the queue holds a journaled envelope without
	// renewing it; it renews and claims every third of it. Default 15s.
	Lease time.Duration
	// StillWanted is asked before sending an envelope claimed from the
	// journal (its node stopped): false drops it, e.g. when its code was
	// already sent or is gone. Default: always true.
	StillWanted func(ctx context.Context, e flow.Envelope) bool
}

// Journal keeps accepted envelopes where a crash of this process can't lose
// them: the queue keeps an envelope before Dispatch returns, renews its hold
// while it works on it, and marks it done when delivered or given up. Any
// queue sharing the journal claims envelopes whose hold ran out and delivers
// them. A message whose sender died after the mail server took it but before
// it was marked done is sent again (at least once); StillWanted narrows
// that window to the moment between the server's answer and the record of
// it on the challenge.
type Journal interface {
	Keep(ctx context.Context, e flow.Envelope, until time.Time) (ticket string, err error)
	Renew(ctx context.Context, tickets []string, until time.Time) error
	Done(ctx context.Context, ticket string) error
	Claim(ctx context.Context, now, until time.Time, max int) ([]Kept, error)
}

// Kept is a journaled envelope and its ticket.
type Kept struct {
	Ticket   string
	Envelope flow.Envelope
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

// String is the event's one name: in metrics labels, logs and the mailer's
// last answer on healthz.
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
	// Recovered: the envelope was claimed from the journal after the
	// process that accepted it stopped.
	Recovered bool
	// Took is how long the mailer took with the attempt (zero for Queued
	// and for decoys, which no mailer sees).
	Took time.Duration
}

var errDecoyTrouble = errors.New("mail delivery is failing")

// ErrShutdown is the Err of envelopes given up because the queue was closed
// before they could be delivered.
var ErrShutdown = errors.New("the server shut down before the message could be delivered")

type job struct {
	env       flow.Envelope
	ticket    string // in the journal; "" without one
	recovered bool
	attempt   int
	last      bool          // shutting down: no retry after this attempt
	took      time.Duration // the mailer's time on the last attempt
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

	held        map[string]struct{} // journal tickets this queue works on
	stopJournal chan struct{}
	journalDone chan struct{}
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
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	q := &Queue{
		cfg:     cfg,
		jobs:    make(chan job, cfg.Capacity),
		timers:  make(map[*time.Timer]job),
		drained: make(chan struct{}),
		held:    make(map[string]struct{}),
	}
	q.sendCtx, q.abort = context.WithCancel(context.Background())
	for i := 0; i < cfg.Workers; i++ {
		q.workers.Add(1)
		go q.work()
	}
	if cfg.Journal != nil {
		q.stopJournal, q.journalDone = make(chan struct{}), make(chan struct{})
		go q.tendJournal()
	}
	return q
}

// Dispatch implements flow.Dispatcher. With a journal, the envelope is kept
// there before Dispatch returns; if it can't be, Dispatch fails.
func (q *Queue) Dispatch(ctx context.Context, e flow.Envelope) error {
	q.mu.Lock()
	if q.closed || q.pending >= q.cfg.Capacity {
		q.mu.Unlock()
		return flow.ErrBusy
	}
	q.pending++ // a place, held while the journal is written
	q.mu.Unlock()
	j := job{env: e, attempt: 1}
	if q.cfg.Journal != nil {
		ticket, err := q.cfg.Journal.Keep(ctx, e, time.Now().Add(q.cfg.Lease))
		if err != nil {
			q.release("")
			return err
		}
		j.ticket = ticket
	}
	q.mu.Lock()
	if j.ticket != "" {
		q.held[j.ticket] = struct{}{}
	}
	q.jobs <- j
	q.mu.Unlock()
	q.report(Report{Event: Queued, Envelope: e})
	return nil
}

// release gives back a place taken for an envelope that is finished or
// was never accepted, and stops renewing its journal ticket ("" for none).
func (q *Queue) release(ticket string) {
	q.mu.Lock()
	delete(q.held, ticket)
	q.pending--
	if q.closed && q.pending == 0 {
		close(q.drained)
	}
	q.mu.Unlock()
}

// tendJournal renews the holds on this queue's envelopes and claims those
// other queues (stopped processes) no longer hold, every third of a lease.
func (q *Queue) tendJournal() {
	defer close(q.journalDone)
	tick := time.NewTicker(q.cfg.Lease / 3)
	defer tick.Stop()
	for {
		q.renewAndClaim()
		select {
		case <-q.stopJournal:
			return
		case <-tick.C:
		}
	}
}

func (q *Queue) renewAndClaim() {
	ctx, cancel := context.WithTimeout(q.sendCtx, q.cfg.Lease/3)
	defer cancel()
	now := time.Now()
	until := now.Add(q.cfg.Lease)
	q.mu.Lock()
	tickets := make([]string, 0, len(q.held))
	for t := range q.held {
		tickets = append(tickets, t)
	}
	free := q.cfg.Capacity - q.pending
	closed := q.closed
	q.mu.Unlock()
	_ = q.cfg.Journal.Renew(ctx, tickets, until) // a miss: another node may deliver it too
	if closed || free <= 0 {
		return
	}
	kept, err := q.cfg.Journal.Claim(ctx, now, until, free)
	if err != nil {
		return
	}
	for _, k := range kept {
		q.mu.Lock()
		_, ours := q.held[k.Ticket]
		q.mu.Unlock()
		if ours {
			// Its renewal failed and the lease ran out: the claim
			// renewed it, and this queue is still working on it.
			continue
		}
		if q.cfg.StillWanted != nil && !q.cfg.StillWanted(ctx, k.Envelope) {
			_ = q.cfg.Journal.Done(ctx, k.Ticket)
			continue
		}
		q.mu.Lock()
		if q.closed || q.pending >= q.cfg.Capacity {
			q.mu.Unlock()
			return // its lease runs out again: another queue takes it
		}
		q.pending++
		q.held[k.Ticket] = struct{}{}
		q.jobs <- job{env: k.Envelope, ticket: k.Ticket, recovered: true, attempt: 1}
		q.mu.Unlock()
		q.report(Report{Event: Queued, Envelope: k.Envelope, Recovered: true})
	}
}

// Troubled reports whether the last TroubleAfter attempts all failed.
func (q *Queue) Troubled() bool {
	return int(q.failures.Load()) >= q.cfg.TroubleAfter
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
	case flow.IsPermanent(err) || j.attempt >= q.cfg.MaxAttempts:
		q.finish(j, Failed, flow.DeliveryFailed, err)
	case j.last && j.ticket != "":
		q.finish(j, Failed, flow.DeliveryFailed, ErrShutdown) // another process retries it
	case j.last:
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
	q.report(Report{Event: Retrying, Envelope: j.env, Attempt: j.attempt, Err: err, RetryIn: wait, StoreErr: storeErr, Took: j.took, Recovered: j.recovered})
	next := j
	next.attempt, next.took = j.attempt+1, 0
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
	// A journaled envelope given up at shutdown stays in the journal, still
	// "on its way": another process (or this one, restarted) claims it
	// when its lease runs out.
	leftForLater := j.ticket != "" && errors.Is(err, ErrShutdown)
	var storeErr error
	if !leftForLater {
		storeErr = q.record(j.env, state)
		if j.ticket != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if doneErr := q.cfg.Journal.Done(ctx, j.ticket); doneErr != nil && storeErr == nil {
				storeErr = doneErr
			}
			cancel()
		}
	}
	q.report(Report{Event: ev, Envelope: j.env, Attempt: j.attempt, Err: err, StoreErr: storeErr, Took: j.took, Recovered: j.recovered})
	q.release(j.ticket)
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
	if q.stopJournal != nil {
		// Renewed until now, so no other process took them meanwhile.
		close(q.stopJournal)
		<-q.journalDone
	}
	q.workers.Wait()
	q.abort()
}

var _ flow.Dispatcher = (*Queue)(nil)
