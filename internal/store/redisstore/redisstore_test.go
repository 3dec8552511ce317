package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
	"github.com/otpgate/caddy-email-otp/internal/store/storetest"
)

func TestContract(t *testing.T) {
	srv := redisserver.Start(t)
	db := 0
	storetest.Run(t, func(t *testing.T) flow.Store {
		db++ // a fresh database per test
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, DB: db % 16})
		t.Cleanup(func() { rdb.FlushDB(context.Background()); rdb.Close() })
		return redisstore.New(rdb, redisstore.Options{})
	})
}

func TestKeysExpireWithTheirData(t *testing.T) {
	srv := redisserver.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := redisstore.New(rdb, redisstore.Options{Prefix: "t:"})
	ctx := context.Background()
	now := time.Now()
	c := flow.Challenge{ID: flow.IdentityTag("acme", "a@b.co") + ".0123456789abcdef.x", Tenant: "acme", Email: "a@b.co", CodeHash: []byte("h"), ExpiresAt: now.Add(time.Hour), MaxAttempts: 5}
	if err := s.SaveChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "sid", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Keep(ctx, "smtp", []byte("sealed"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(ctx, "t:*").Result()
	if len(keys) != 4 {
		t.Fatalf("keys %v", keys)
	}
	for _, k := range keys {
		ttl, _ := rdb.PTTL(ctx, k).Result()
		// A journal lasts a day after its last message.
		if ttl <= 0 || ttl > 24*time.Hour {
			t.Errorf("%s has TTL %v", k, ttl)
		}
	}
}

func TestOutageFailsClosedOrWithinGrace(t *testing.T) {
	srv := redisserver.Start(t)
	ctx := context.Background()
	client := func() *redis.Client {
		return redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	}
	closed := redisstore.New(client(), redisstore.Options{})
	graced := redisstore.New(client(), redisstore.Options{SessionGrace: time.Minute})
	now := time.Now()
	for _, s := range []*redisstore.Store{closed, graced} {
		if r, err := s.SessionRevoked(ctx, "sid", now); err != nil || r {
			t.Fatalf("before the outage: %v %v", r, err)
		}
	}
	srv.Stop()
	if _, err := closed.SessionRevoked(ctx, "sid", now); err == nil {
		t.Error("without grace, a session check passes while Redis is down")
	}
	if r, err := graced.SessionRevoked(ctx, "sid", now.Add(30*time.Second)); err != nil || r {
		t.Errorf("within grace: %v %v", r, err)
	}
	if _, err := graced.SessionRevoked(ctx, "sid", now.Add(2*time.Minute)); err == nil {
		t.Error("past the grace, a session check passes while Redis is down")
	}
	if _, err := graced.SessionRevoked(ctx, "never-seen", now); err == nil {
		t.Error("a session this node never checked passes while Redis is down")
	}
	if err := closed.SaveChallenge(ctx, flow.Challenge{ID: flow.IdentityTag("a", "b@c.de") + ".0123456789abcdef.x", ExpiresAt: now.Add(time.Minute)}); err == nil {
		t.Error("saving a challenge succeeds while Redis is down")
	}
	srv.Restart()
	if r, err := closed.SessionRevoked(ctx, "sid", now); err != nil || r {
		t.Errorf("after the outage: %v %v", r, err)
	}
}

// BenchmarkSessionRevoked is the per-request cost of the revocation check: one
// round trip to a Redis on loopback.
func BenchmarkSessionRevoked(b *testing.B) {
	srv := redisserver.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := redisstore.New(rdb, redisstore.Options{})
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.SessionRevoked(ctx, "sid", now); err != nil {
			b.Fatal(err)
		}
	}
}
