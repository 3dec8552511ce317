package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// commandCounter counts the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// node is one gateway's store on a shared Redis, watching the feed.
func node(t *testing.T, srv *redisserver.Server, cache time.Duration) (*redisstore.Store, *commandCounter, *redis.Client) {
	t.Helper()
	s, counter, rdb := unwatchedNode(t, srv, cache)
	s.Watch()
	return s, counter, rdb
}

// unwatchedNode is a node that has not subscribed to the feed yet.
func unwatchedNode(t *testing.T, srv *redisserver.Server, cache time.Duration) (*redisstore.Store, *commandCounter, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	counter := &commandCounter{}
	rdb.AddHook(counter)
	s := redisstore.New(rdb, redisstore.Options{SessionCache: cache})
	t.Cleanup(func() { s.Close(); rdb.Close() })
	return s, counter, rdb
}

// watchingPair is two nodes subscribed to the feed, remembering answers for
// an hour (far longer than a test: only an announcement ends one), and a
// count of node B's commands.
func watchingPair(t *testing.T, srv *redisserver.Server) (a, b *redisstore.Store, bCommands *commandCounter) {
	t.Helper()
	a, _, _ = node(t, srv, time.Hour)
	b, bCommands, _ = node(t, srv, time.Hour)
	within(t, 5*time.Second, "subscribed", func() bool { return a.Watching() && b.Watching() })
	return a, b, bCommands
}

// within polls cond until it holds or bound passes, and says how long it took.
func within(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func revoked(t *testing.T, s *redisstore.Store, id string) bool {
	t.Helper()
	r, err := s.SessionRevoked(context.Background(), id, time.Now())
	if err != nil {
		t.Fatalf("checking %s: %v", id, err)
	}
	return r
}

func TestSessionChecksComeFromMemoryAndSignOutReachesEveryNode(t *testing.T) {
	a, b, bCommands := watchingPair(t, redisserver.Start(t))
	revoked(t, b, "sid")
	before := bCommands.n.Load()
	for range 1000 {
		if revoked(t, b, "sid") {
			t.Fatal("a session nobody signed out is revoked")
		}
	}
	if n := bCommands.n.Load() - before; n != 0 {
		t.Errorf("1000 checks of a known session sent %d commands to Redis, want 0", n)
	}

	if err := a.RevokeSession(context.Background(), "sid", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, a, "sid") {
		t.Error("the node that signed out still lets the session in")
	}
	took := within(t, time.Second, "sign-out on A seen on B", func() bool { return revoked(t, b, "sid") })
	t.Logf("sign-out on one node seen on the other after %v", took)
}

func TestALostAnnouncementCostsAtMostTheCacheBound(t *testing.T) {
	srv := redisserver.Start(t)
	const bound = 300 * time.Millisecond
	b, _, rdb := node(t, srv, bound)
	within(t, 5*time.Second, "subscribed", b.Watching)
	revoked(t, b, "sid")
	// Revoked behind the feed's back, as if the announcement were lost.
	if err := rdb.Set(context.Background(), "email_otp:revoked:{sid}", 1, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	within(t, bound+200*time.Millisecond, "an unannounced sign-out", func() bool { return revoked(t, b, "sid") })
	if took := time.Since(start); took > bound+100*time.Millisecond {
		t.Errorf("an unannounced sign-out took %v, bound %v", took, bound)
	}
}

func TestLosingTheSubscriptionFallsBackToRedisUntilResubscribed(t *testing.T) {
	srv := redisserver.Start(t)
	a, b, bCommands := watchingPair(t, srv)
	revoked(t, b, "sid")

	srv.Stop()
	within(t, 5*time.Second, "B notices the lost subscription", func() bool { return !b.Watching() })
	if _, err := b.SessionRevoked(context.Background(), "sid", time.Now()); err == nil {
		t.Error("with Redis down and no subscription, B answers a session check from memory")
	}

	srv.Restart()
	// Sign-out the moment Redis is back, perhaps before B resubscribed
	// and so before it can hear of it: B must not trust what it had.
	if err := a.RevokeSession(context.Background(), "sid", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "sign-out after a Redis restart seen on B", func() bool {
		r, err := b.SessionRevoked(context.Background(), "sid", time.Now())
		return err == nil && r
	})
	within(t, 5*time.Second, "B resubscribes", b.Watching)
	revoked(t, b, "other")
	before := bCommands.n.Load()
	revoked(t, b, "other")
	if n := bCommands.n.Load() - before; n != 0 {
		t.Errorf("after resubscribing, a known session cost %d commands", n)
	}
}

func TestGuestChangesReachEveryNode(t *testing.T) {
	srv := redisserver.Start(t)
	a, _, _ := node(t, srv, time.Hour)
	b, _, _ := unwatchedNode(t, srv, time.Hour)
	// Listening before B subscribes: the first call is the flush that every
	// (re)subscription starts with.
	var mu sync.Mutex
	var heard []string
	stop := b.OnGuestChange(func(tenant, email string) {
		mu.Lock()
		heard = append(heard, tenant+"|"+email)
		mu.Unlock()
	})
	defer stop()
	b.Watch()
	within(t, 5*time.Second, "subscribed", func() bool { return a.Watching() && b.Watching() })
	if err := a.AnnounceGuestChange(context.Background(), "host:contoso.example", "ada@contoso.com"); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "the change heard on B", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) > 0 && heard[len(heard)-1] == "host:contoso.example|ada@contoso.com"
	})
	mu.Lock()
	if heard[0] != "|" {
		t.Errorf("subscribing did not first tell B to forget everything: %q", heard)
	}
	mu.Unlock()
}
