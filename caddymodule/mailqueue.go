package emailotp

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/mail/delivery"
)

// DeliveryConfig tunes the queue between the sign-in page and the mailer.
type DeliveryConfig struct {
	// Messages being sent at once. Default: 4.
	Workers int `json:"workers,omitempty"`
	// Messages waiting or being retried at once; past it guests are asked to
	// try again in a minute. Default: 1000.
	Capacity int `json:"capacity,omitempty"`
	// Attempts per message, the first included. Default: 6.
	Attempts int `json:"attempts,omitempty"`
	// Wait after the first failed attempt; it doubles after each. Default: 2s.
	FirstRetry caddy.Duration `json:"first_retry,omitempty"`
	// Longest wait between attempts. Default: 1m.
	MaxRetry caddy.Duration `json:"max_retry,omitempty"`
	// How long a shutdown waits for queued messages. Default: 10s.
	DrainTimeout caddy.Duration `json:"drain_timeout,omitempty"`
	// With store redis, how long a node may go without renewing its hold
	// on the messages it accepted before another node takes them over (the
	// node died). Default: 15s.
	Lease caddy.Duration `json:"lease,omitempty"`
}

// queues keeps delivery queues across reloads, one per mailer, store and
// delivery configuration, so a reload neither drops queued messages nor
// sends them twice; a queue is drained when no loaded config uses it.
var queues = caddy.NewUsagePool()

// mailQueue is a pooled delivery queue. It outlives the config that made
// it, so it sends through whatever the newest loaded config of the same
// settings lends it (queueLender).
type mailQueue struct {
	*delivery.Queue
	key   string // in queues
	lent  *queueLender
	drain time.Duration
	// last is the mailer's last answer to a real message, for health.
	last atomic.Pointer[mailerAnswer]
}

// queueLoan is what one loaded config lends its queue.
type queueLoan struct {
	mailer  flow.Mailer
	store   flow.Store
	journal *sealedJournal // nil: the store keeps no journal
	logger  *zap.Logger
	mask    bool // mask_addresses
}

// queueLender hands the queue the newest loan: a reload swaps the mailer,
// store, journal and logger at once. It is the queue's mailer, its delivery
// recorder and, with a journal, its journal.
type queueLender struct{ atomic.Pointer[queueLoan] }

func (l *queueLender) Send(ctx context.Context, m flow.Message) error {
	return l.Load().mailer.Send(ctx, m)
}

func (l *queueLender) SetDelivery(ctx context.Context, id string, state flow.DeliveryState) error {
	return l.Load().store.SetDelivery(ctx, id, state)
}

func (l *queueLender) Keep(ctx context.Context, e flow.Envelope, until time.Time) (string, error) {
	return l.Load().journal.keep(ctx, e, until)
}

func (l *queueLender) Renew(ctx context.Context, tickets []string, until time.Time) error {
	return l.Load().journal.renew(ctx, tickets, until)
}

func (l *queueLender) Done(ctx context.Context, ticket string) error {
	return l.Load().journal.done(ctx, ticket)
}

func (l *queueLender) Claim(ctx context.Context, now, until time.Time, max int) ([]delivery.Kept, error) {
	return l.Load().journal.claim(ctx, now, until, max)
}

func (l *queueLender) stillWanted(ctx context.Context, e flow.Envelope) bool {
	return l.Load().journal.stillWanted(ctx, e)
}

// queueKeyOf names the queue of a mailer, store and delivery settings;
// gateways that agree on all three share one.
func queueKeyOf(mods loadedModules, dc *DeliveryConfig) string {
	settings, _ := json.Marshal(dc)
	h := sha256.New()
	for _, p := range [][]byte{mods.mailerJSON, mods.storeJSON, settings} {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadQueue returns the pooled queue of these settings, lending it loan.
// Every call must be paired with release.
func loadQueue(key, mailerName string, dc *DeliveryConfig, loan *queueLoan) (*mailQueue, error) {
	if dc == nil {
		dc = &DeliveryConfig{}
	}
	v, _, err := queues.LoadOrNew(key, func() (caddy.Destructor, error) {
		mq := &mailQueue{key: key, lent: new(queueLender), drain: cmp.Or(time.Duration(dc.DrainTimeout), 10*time.Second)}
		mq.lent.Store(loan)
		cfg := delivery.Config{
			Mailer:      mq.lent,
			Store:       mq.lent,
			Workers:     dc.Workers,
			Capacity:    dc.Capacity,
			MaxAttempts: dc.Attempts,
			FirstRetry:  time.Duration(dc.FirstRetry),
			MaxRetry:    time.Duration(dc.MaxRetry),
			Lease:       time.Duration(dc.Lease),
			Report: func(r delivery.Report) {
				loan := mq.lent.Load()
				mq.remember(r)
				reportDelivery(loan.logger, mailerName, loan.mask, r)
			},
		}
		if loan.journal != nil {
			cfg.Journal, cfg.StillWanted = mq.lent, mq.lent.stillWanted
		}
		mq.Queue = delivery.New(cfg)
		return mq, nil
	})
	if err != nil {
		return nil, err
	}
	mq := v.(*mailQueue)
	mq.lent.Store(loan)
	return mq, nil
}

// release ends this config's use of the queue; the last use drains it.
func (q *mailQueue) release() error {
	_, err := queues.Delete(q.key)
	return err
}

// Destruct drains the queue: what can't be delivered in time is reported.
func (q *mailQueue) Destruct() error {
	ctx, cancel := context.WithTimeout(context.Background(), q.drain)
	defer cancel()
	q.Close(ctx)
	return nil
}
