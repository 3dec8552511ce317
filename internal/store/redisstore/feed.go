package redisstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/internal/ttlcache"
)

// The change feed: one Redis pub/sub channel on which every node announces
// a sign-out (a session revoked) or a change to a guest's record, so every
// node drops what it remembered about them. It lets a signed-in request be
// answered without a round trip to Redis.
//
// Pub/sub delivers at most once: a message sent while a node's connection
// is down is lost to that node. Three things keep a node honest anyway:
//   - an answer is remembered for at most cacheTTL (1 s by default), message
//     or no message, so a lost message costs at most that much staleness;
//   - while the node is not subscribed (connection lost, Redis restarting)
//     it remembers nothing and asks Redis on every request;
//   - on every (re)subscription it forgets everything before trusting the
//     feed again, because whatever it missed in between is unknown.
//
// Pub/sub was chosen over RESP3 client-side caching (rueidis), measured side
// by side in integration/bench/rueidis: both take Redis off the request path,
// but the feed answers faster (about 60% of the time) with no allocation, and Redis keeps
// nothing per session for it, while tracking keeps every key each node read
// in a table bounded at a million keys by default. One channel also works the
// same on Redis, Valkey, Sentinel and Cluster through the go-redis client the
// store already uses, and adds no second client library.

const (
	msgSession = "s:" // + session id: signed out
	msgGuest   = "g:" // + tenant key + "\x00" + address: record changed
)

// feed is the store's subscription and what it lets the node remember.
type feed struct {

	// watching is true while the subscription is confirmed and nothing
	// was missed since the last flush: only then is the cache used.
	watching atomic.Bool
	// mu orders cache fills against invalidations: a fill whose Redis
	// answer may predate an invalidation (epoch moved) is dropped.
	mu       sync.Mutex
	epoch    uint64
	sessions *ttlcache.Cache[string, bool] // session id → revoked

	listenersMu sync.Mutex
	listeners   map[int]func(tenant, email string)
	nextID      int

	cancel context.CancelFunc
	ps     *redis.PubSub
	done   chan struct{}
}

// watchInterval is how long the subscription may stay silent before the
// node pings Redis; a link that answers nothing for two intervals is
// treated as lost.
const watchInterval = time.Second

func (s *Store) channel() string { return s.prefix + "changes" }

// Watch subscribes to the change feed and, from the first confirmation,
// answers session checks from memory for up to the store's SessionCache.
// It returns at once; Close stops it. Without a SessionCache it does
// nothing: every check asks Redis.
func (s *Store) Watch() {
	if s.feed == nil || s.feed.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.feed.cancel, s.feed.done = cancel, make(chan struct{})
	s.feed.ps = s.rdb.Subscribe(ctx, s.channel())
	go s.listen(ctx)
}

// Close stops the feed started by Watch.
func (s *Store) Close() {
	if s.feed == nil || s.feed.cancel == nil {
		return
	}
	s.feed.cancel()
	_ = s.feed.ps.Close() // ends a Receive blocked on the socket
	<-s.feed.done
}

// Watching reports whether session checks are answered from memory now.
func (s *Store) Watching() bool { return s.feed != nil && s.feed.watching.Load() }

func (s *Store) listen(ctx context.Context) {
	f := s.feed
	defer close(f.done)
	ps := f.ps
	heard := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, watchInterval)
		switch {
		case ctx.Err() != nil || errors.Is(err, redis.ErrClosed):
			return
		case isTimeout(err):
			if time.Since(heard) > 2*watchInterval {
				f.stopTrusting() // silent for too long: as good as lost
			}
			_ = ps.Ping(ctx)
			continue
		case err != nil:
			// go-redis reconnects and resubscribes at the next
			// Receive; until its confirmation, nothing is trusted.
			f.stopTrusting()
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		heard = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f.trustAfterFlush()
			}
		case *redis.Pong:
			if !f.watching.Load() {
				// The link was silent, not cut: whatever was sent
				// meanwhile may be lost, so start over.
				f.trustAfterFlush()
			}
		case *redis.Message:
			f.apply(m.Payload)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (f *feed) stopTrusting() {
	f.mu.Lock()
	f.watching.Store(false)
	f.epoch++
	f.mu.Unlock()
}

// trustAfterFlush forgets every session and guest record, then trusts the
// feed: it runs at each (re)subscription.
func (f *feed) trustAfterFlush() {
	f.mu.Lock()
	f.epoch++
	f.sessions.Purge()
	f.watching.Store(true)
	f.mu.Unlock()
	f.tell("", "")
}

func (f *feed) apply(payload string) {
	switch {
	case strings.HasPrefix(payload, msgSession):
		f.forgetSession(payload[len(msgSession):], true)
	case strings.HasPrefix(payload, msgGuest):
		tenant, email, ok := strings.Cut(payload[len(msgGuest):], "\x00")
		if ok && tenant != "" {
			f.tell(tenant, email)
		}
	}
}

// forgetSession records that session id's answer changed; revoked answers
// are final, so the node keeps that one.
func (f *feed) forgetSession(id string, revoked bool) {
	f.mu.Lock()
	f.epoch++
	if revoked && f.watching.Load() {
		f.sessions.Add(id, true)
	} else {
		f.sessions.Remove(id)
	}
	f.mu.Unlock()
}

// revoked answers from memory when the feed is trusted.
func (f *feed) revoked(id string) (revoked, known bool, epoch uint64) {
	if !f.watching.Load() {
		return false, false, 0
	}
	if revoked, ok := f.sessions.Get(id); ok {
		return revoked, true, 0
	}
	f.mu.Lock()
	epoch = f.epoch
	f.mu.Unlock()
	return false, false, epoch
}

// remember keeps Redis's answer unless the feed moved since it was asked.
func (f *feed) remember(id string, revoked bool, asked uint64) {
	f.mu.Lock()
	if f.epoch == asked && f.watching.Load() {
		f.sessions.Add(id, revoked)
	}
	f.mu.Unlock()
}

// OnGuestChange calls fn with a guest's tenant key and address when any node
// announces a change to its record, and with ("", "") when everything should
// be forgotten (the node may have missed announcements). fn must be quick.
// The returned func stops the calls.
func (s *Store) OnGuestChange(fn func(tenant, email string)) (stop func()) {
	if s.feed == nil {
		return func() {}
	}
	f := s.feed
	f.listenersMu.Lock()
	id := f.nextID
	f.nextID++
	f.listeners[id] = fn
	f.listenersMu.Unlock()
	return func() {
		f.listenersMu.Lock()
		delete(f.listeners, id)
		f.listenersMu.Unlock()
	}
}

func (f *feed) tell(tenant, email string) {
	f.listenersMu.Lock()
	defer f.listenersMu.Unlock()
	for _, fn := range f.listeners {
		fn(tenant, email)
	}
}

// AnnounceGuestChange tells every node that the record of email in tenant
// changed (revoked, reset, deleted, invited again).
func (s *Store) AnnounceGuestChange(ctx context.Context, tenant, email string) error {
	return s.rdb.Publish(ctx, s.channel(), msgGuest+tenant+"\x00"+email).Err()
}
