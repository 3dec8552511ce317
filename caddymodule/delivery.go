package emailotp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
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

// mailQueue is a pooled queue. Its mailer and store are the newest loaded
// config's instances of the same configuration.
type mailQueue struct {
	*delivery.Queue
	mailer atomic.Pointer[flow.Mailer]
	store  atomic.Pointer[flow.Store]
	logger atomic.Pointer[zap.Logger]
	mask   atomic.Bool
	drain  time.Duration
	// last is the mailer's last answer to a real message, for health.
	last atomic.Pointer[mailerAnswer]
	// journal, with store redis, keeps queued messages in Redis (sealed),
	// so the death of this process loses none.
	journal atomic.Pointer[sealedJournal]
}

// journalStore is a store that can keep queued messages for every node
// (store redis): see redisstore's journal.
type journalStore interface {
	Keep(ctx context.Context, journal string, sealed []byte, until time.Time) (string, error)
	Renew(ctx context.Context, journal string, tickets []string, until time.Time) error
	Done(ctx context.Context, journal, ticket string) error
	Claim(ctx context.Context, journal string, now, until time.Time, max int) ([]string, [][]byte, error)
	JournalLen(ctx context.Context, journal string) (int64, error)
}

// sealedJournal is the delivery journal on an journalStore: messages hold
// codes, so they are sealed (encrypted and authenticated) with the
// gateway's keys before they leave the process.
type sealedJournal struct {
	store journalStore
	// name is shared by the queues that can deliver each other's
	// messages: the same mailer settings and the same keys.
	name   string
	sealer *flow.Sealer
	// stillWanted reads the challenge: a claimed message whose code was
	// sent, used or replaced is dropped.
	challenges flow.Store
}

// journalRecord is what the journal keeps of an envelope.
type journalRecord struct {
	ChallengeID string       `json:"c"`
	Tenant      string       `json:"t"`
	Message     flow.Message `json:"m"`
	Decoy       bool         `json:"d,omitempty"`
}

const journalSealName = "journal"

// swapJournal lets the pooled queue use the newest config's journal.
type swapJournal struct{ q *mailQueue }

func (j swapJournal) Keep(ctx context.Context, e flow.Envelope, until time.Time) (string, error) {
	o := j.q.journal.Load()
	sealed, err := o.sealer.Seal(journalSealName, journalRecord{e.ChallengeID, e.Tenant, e.Message, e.Decoy})
	if err != nil {
		return "", err
	}
	return o.store.Keep(ctx, o.name, []byte(sealed), until)
}

func (j swapJournal) Renew(ctx context.Context, tickets []string, until time.Time) error {
	o := j.q.journal.Load()
	return o.store.Renew(ctx, o.name, tickets, until)
}

func (j swapJournal) Done(ctx context.Context, ticket string) error {
	o := j.q.journal.Load()
	return o.store.Done(ctx, o.name, ticket)
}

func (j swapJournal) Claim(ctx context.Context, now, until time.Time, max int) ([]delivery.Kept, error) {
	o := j.q.journal.Load()
	tickets, sealed, err := o.store.Claim(ctx, o.name, now, until, max)
	if err != nil {
		return nil, err
	}
	kept := make([]delivery.Kept, 0, len(tickets))
	for i, t := range tickets {
		var r journalRecord
		if o.sealer.Open(journalSealName, string(sealed[i]), &r) != nil {
			// The name covers the keys, so this is damage, not a
			// neighbour's message: nothing can send it.
			_ = o.store.Done(ctx, o.name, t)
			continue
		}
		kept = append(kept, delivery.Kept{Ticket: t, Envelope: flow.Envelope{ChallengeID: r.ChallengeID, Tenant: r.Tenant, Message: r.Message, Decoy: r.Decoy}})
	}
	return kept, nil
}

// stillWanted: a claimed message is sent only if its challenge is live and
// its code not yet known to be sent.
func (j swapJournal) stillWanted(ctx context.Context, e flow.Envelope) bool {
	ch, err := j.q.journal.Load().challenges.LoadChallenge(ctx, e.ChallengeID, time.Now())
	if err != nil {
		return !errors.Is(err, flow.ErrChallengeNotFound) // unsure: send rather than lose it
	}
	return ch.Delivery != flow.DeliverySent
}

// mailerAnswer is how the mailer last fared.
type mailerAnswer struct {
	Result string    `json:"result"` // delivered, retrying or failed
	At     time.Time `json:"at"`
	Error  string    `json:"error,omitempty"`
}

// Destruct drains the queue: what can't be delivered in time is reported.
func (q *mailQueue) Destruct() error {
	ctx, cancel := context.WithTimeout(context.Background(), q.drain)
	defer cancel()
	q.Close(ctx)
	return nil
}

// swapMailer and swapStore let the pooled queue use the newest instances.
type swapMailer struct{ q *mailQueue }

func (s swapMailer) Send(ctx context.Context, m flow.Message) error {
	return (*s.q.mailer.Load()).Send(ctx, m)
}

type swapStore struct{ q *mailQueue }

func (s swapStore) SetDelivery(ctx context.Context, id string, state flow.DeliveryState) error {
	return (*s.q.store.Load()).SetDelivery(ctx, id, state)
}

func queueKey(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// queueKeyOf names the queue of this gateway's mailer, store and delivery
// settings; gateways that agree on all three share one.
func (g *Gateway) queueKeyOf() string {
	settings, _ := json.Marshal(g.Delivery)
	return queueKey(g.MailerRaw, g.StoreRaw, settings)
}

// loadQueue returns the pooled queue under key, pointing it at this config's
// mailer, store and logger.
func (g *Gateway) loadQueue(key string) (*mailQueue, error) {
	dc := g.Delivery
	if dc == nil {
		dc = &DeliveryConfig{}
	}
	mailerName := g.mailerName
	v, _, err := queues.LoadOrNew(key, func() (caddy.Destructor, error) {
		mq := &mailQueue{drain: time.Duration(dc.DrainTimeout)}
		if mq.drain <= 0 {
			mq.drain = 10 * time.Second
		}
		cfg := delivery.Config{
			Mailer:      swapMailer{mq},
			Store:       swapStore{mq},
			Workers:     dc.Workers,
			Capacity:    dc.Capacity,
			MaxAttempts: dc.Attempts,
			FirstRetry:  time.Duration(dc.FirstRetry),
			MaxRetry:    time.Duration(dc.MaxRetry),
			Lease:       time.Duration(dc.Lease),
			Report: func(r delivery.Report) {
				mq.remember(r)
				reportDelivery(mq.logger.Load(), mailerName, mq.mask.Load(), r)
			},
		}
		if g.journal != nil {
			mq.journal.Store(g.journal)
			j := swapJournal{mq}
			cfg.Journal, cfg.StillWanted = j, j.stillWanted
		}
		mq.Queue = delivery.New(cfg)
		return mq, nil
	})
	if err != nil {
		return nil, err
	}
	g.queueKey = key
	mq := v.(*mailQueue)
	var m flow.Mailer = g.mailer
	var s flow.Store = g.store
	mq.mailer.Store(&m)
	mq.store.Store(&s)
	mq.logger.Store(g.log.Logger)
	mq.mask.Store(g.MaskAddresses)
	if g.journal != nil && mq.journal.Load() != nil {
		mq.journal.Store(g.journal)
	}
	return mq, nil
}

// newSealedJournal is the journal on the gateway's store for its mailer's
// settings, or nil when the store keeps no journal (memory: a crash loses
// queued messages).
func (g *Gateway) newSealedJournal(mailerRaw []byte, keys *flow.Keys) *sealedJournal {
	store, ok := g.storeModule.(journalStore)
	if !ok {
		return nil
	}
	return &sealedJournal{store: store, name: journalNameOf(mailerRaw, keys), sealer: keys.RecordSealer("journal"), challenges: g.store}
}

// journalNameOf names the journal of a mailer's settings under the gateway's
// keys: a digest of both, the same on every node that shares them, so a
// message is only ever claimed by a queue that sends through the same mailer
// and can open it. It reveals neither.
func journalNameOf(mailerRaw []byte, keys *flow.Keys) string {
	h := hmac.New(sha256.New, keys.MAC("journal name"))
	h.Write(mailerRaw)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// reportDelivery logs one line per delivery result and counts every event.
// Decoys are counted with the real messages, so the metrics, like the pages,
// do not tell allowed from denied addresses; they are not logged.
func reportDelivery(logger *zap.Logger, mailer string, mask bool, r delivery.Report) {
	event := r.Event.String()
	tenantName := tenantLabel(directory.TenantName(r.Envelope.Tenant))
	mailEvents.WithLabelValues(mailer, tenantName, event).Inc()
	switch r.Event {
	case delivery.Queued:
		queueDepth.Inc()
	case delivery.Delivered, delivery.Failed:
		queueDepth.Dec()
	}
	if r.Took > 0 {
		result := "ok"
		if r.Err != nil {
			result = "error"
		}
		mailSeconds.WithLabelValues(mailer, result).Observe(r.Took.Seconds())
	}
	if r.StoreErr != nil {
		logger.Error("could not record the delivery state on the challenge",
			zap.String("tenant", r.Envelope.Tenant), zap.String("event", event), zap.Error(r.StoreErr))
	}
	if r.Envelope.Decoy || r.Event == delivery.Queued {
		return
	}
	to := r.Envelope.Message.To
	if mask {
		to = maskAddress(to)
	}
	fields := []zap.Field{
		zap.String("tenant", r.Envelope.Tenant),
		zap.String("email", to),
		zap.String("mailer", mailer),
		zap.Int("attempt", r.Attempt),
	}
	// A real message's end is a step of the sign-in: the funnel and the
	// audit log hear of it.
	step := func(name string) {
		id := directory.TenantName(r.Envelope.Tenant)
		recordStep(logger.Named("audit"), id, name, "", zap.String("tenant", id), zap.String("email", to))
	}
	switch r.Event {
	case delivery.Delivered:
		logger.Info("code email delivered", fields...)
		step("delivered")
	case delivery.Retrying:
		logger.Warn("code email not delivered; retrying", append(fields, zap.Duration("retry_in", r.RetryIn), zap.Error(r.Err))...)
	case delivery.Failed:
		logger.Error("code email not delivered; giving up", append(fields, zap.Bool("permanent", flow.IsPermanent(r.Err)), zap.Error(r.Err))...)
		step("delivery_failed")
	}
}

// remember keeps the mailer's answer to a real message (decoys never reach
// the mailer).
func (q *mailQueue) remember(r delivery.Report) {
	if r.Envelope.Decoy || r.Event == delivery.Queued {
		return
	}
	a := &mailerAnswer{Result: r.Event.String(), At: time.Now().UTC()}
	if r.Err != nil {
		a.Error = r.Err.Error()
	}
	q.last.Store(a)
	recentMail.add(r.Envelope.Tenant, r.Envelope.Message.To, *a)
}

// recentMail keeps, per tenant and address, the mailer's last answers about
// their code emails, for the "why can't this guest get in?" trace. Kept in
// this process's memory only; never logged.
var recentMail = newMailHistory(10_000)

type mailHistory struct {
	mu    sync.Mutex
	cache *lru.Cache[string, []mailerAnswer]
}

func newMailHistory(size int) *mailHistory {
	c, _ := lru.New[string, []mailerAnswer](size)
	return &mailHistory{cache: c}
}

// add keeps the newest three answers for an address.
func (h *mailHistory) add(tenant, addr string, a mailerAnswer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := tenant + "\x00" + addr
	prev, _ := h.cache.Get(key)
	h.cache.Add(key, append([]mailerAnswer{a}, prev[:min(len(prev), 2)]...))
}

func (h *mailHistory) of(tenant, addr string) []mailerAnswer {
	h.mu.Lock()
	defer h.mu.Unlock()
	got, _ := h.cache.Get(tenant + "\x00" + addr)
	return got
}
