package emailotp

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/caddy-email-otp/flow"
)

// storeSeconds is how long a networked store (Redis) takes per operation.
var storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "store_seconds",
	Help:      "Time a networked store (redis) took per operation, by store and op.",
	Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
}, []string{"store", "op"})

// timedStore times every call of a networked store. The memory store is
// left bare: it answers in well under a microsecond, and timing it would
// cost more than it tells (it runs on every signed-in request).
type timedStore struct {
	flow.Store
	name string
	// sessionRevoked is looked up once: that check runs on every
	// signed-in request, mostly answered from the node's memory.
	sessionRevoked prometheus.Observer
}

func newTimedStore(s flow.Store, name string) timedStore {
	return timedStore{Store: s, name: name, sessionRevoked: storeSeconds.WithLabelValues(name, "session_revoked")}
}

func (s timedStore) since(op string, start time.Time) {
	storeSeconds.WithLabelValues(s.name, op).Observe(time.Since(start).Seconds())
}

func (s timedStore) SaveChallenge(ctx context.Context, c flow.Challenge) error {
	defer s.since("save_challenge", time.Now())
	return s.Store.SaveChallenge(ctx, c)
}

func (s timedStore) CancelChallenge(ctx context.Context, id string, now time.Time) error {
	defer s.since("cancel_challenge", time.Now())
	return s.Store.CancelChallenge(ctx, id, now)
}

func (s timedStore) LoadChallenge(ctx context.Context, id string, now time.Time) (flow.Challenge, error) {
	defer s.since("load_challenge", time.Now())
	return s.Store.LoadChallenge(ctx, id, now)
}

func (s timedStore) AttemptChallenge(ctx context.Context, id string, codeHash []byte, now time.Time) (flow.AttemptResult, flow.Challenge, error) {
	defer s.since("attempt_challenge", time.Now())
	return s.Store.AttemptChallenge(ctx, id, codeHash, now)
}

func (s timedStore) SetDelivery(ctx context.Context, id string, state flow.DeliveryState) error {
	defer s.since("set_delivery", time.Now())
	return s.Store.SetDelivery(ctx, id, state)
}

func (s timedStore) RevokeSession(ctx context.Context, id string, until time.Time) error {
	defer s.since("revoke_session", time.Now())
	return s.Store.RevokeSession(ctx, id, until)
}

func (s timedStore) SessionRevoked(ctx context.Context, id string, now time.Time) (bool, error) {
	start := time.Now()
	revoked, err := s.Store.SessionRevoked(ctx, id, now)
	s.sessionRevoked.Observe(time.Since(start).Seconds())
	return revoked, err
}

func (s timedStore) Count(ctx context.Context, key string, window time.Duration, now time.Time) (int, time.Time, error) {
	defer s.since("count", time.Now())
	return s.Store.Count(ctx, key, window, now)
}

func (s timedStore) Peek(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	defer s.since("peek", time.Now())
	return s.Store.Peek(ctx, key, now)
}

func (s timedStore) ResetCount(ctx context.Context, key string) error {
	defer s.since("reset_count", time.Now())
	return s.Store.ResetCount(ctx, key)
}

func (s timedStore) SetFlag(ctx context.Context, key string, until time.Time) error {
	defer s.since("set_flag", time.Now())
	return s.Store.SetFlag(ctx, key, until)
}

func (s timedStore) Flag(ctx context.Context, key string, now time.Time) (time.Time, bool, error) {
	defer s.since("flag", time.Now())
	return s.Store.Flag(ctx, key, now)
}

func (s timedStore) FirstFlag(ctx context.Context, keys []string, now time.Time) (int, time.Time, error) {
	defer s.since("first_flag", time.Now())
	return s.Store.FirstFlag(ctx, keys, now)
}

func (s timedStore) SaveCeremony(ctx context.Context, id string, state []byte, until time.Time) error {
	defer s.since("save_ceremony", time.Now())
	return s.Store.SaveCeremony(ctx, id, state, until)
}

func (s timedStore) TakeCeremony(ctx context.Context, id string, now time.Time) ([]byte, error) {
	defer s.since("take_ceremony", time.Now())
	return s.Store.TakeCeremony(ctx, id, now)
}
