package flow_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/internal/mail/devmail"
	"github.com/otpgate/caddy-email-otp/internal/store/memstore"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// BenchmarkSessionCheck is the work of every signed-in request: open the
// sealed cookie value, then check tenant, expiry, sign-out and the guest's
// record (cached).
func BenchmarkSessionCheck(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchSessionCheck(b, memstore.New(memstore.Limits{}), 1000, nil) })
	// A guest's first request after sign-in, or a node's first sight of a
	// value: the whole open (AES-GCM, parse).
	b.Run("memory-first-sight", func(b *testing.B) { benchSessionCheck(b, memstore.New(memstore.Limits{}), 0, nil) })
	for _, cache := range []time.Duration{0, time.Second} {
		name := "redis"
		if cache > 0 {
			name = "redis-session-cache"
		}
		b.Run(name, func(b *testing.B) { benchRedisSessionCheck(b, cache) })
	}
}

// benchRedisSessionCheck is the check on a Redis store, answered by Redis
// (cache 0) or, while subscribed to the change feed, from memory.
func benchRedisSessionCheck(b *testing.B, cache time.Duration) {
	srv := redisserver.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	store := redisstore.New(rdb, redisstore.Options{SessionCache: cache})
	store.Watch()
	b.Cleanup(store.Close)
	for deadline := time.Now().Add(5 * time.Second); cache > 0 && !store.Watching(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("never subscribed to the change feed")
		}
	}
	// Commands Redis processed, as Redis counts them: one per round trip
	// for the store's unpipelined calls.
	benchSessionCheck(b, store, 1000, func() float64 { return srv.CommandsProcessed(b) })
}

// benchSessionCheck measures the check; with commands, it also reports the
// store's commands per check.
func benchSessionCheck(b *testing.B, store flow.Store, cached int, commands func() float64) {
	ctx := context.Background()
	keys, _ := flow.NewKeys(flow.NewSecret())
	policy, _ := flow.NewPolicy([]string{"*"}, nil, false)
	guests := directory.New(&certmagic.FileStorage{Path: b.TempDir()}, 100, time.Hour)
	svc, err := flow.New(flow.Config{
		CodeTTL: time.Minute, SessionTTL: time.Hour, CodeLength: 8, MaxAttempts: 5,
		Policy: policy, Keys: keys, Store: store, Guests: guests, Dispatcher: direct(devmail.New(1)),
		Compose: func(flow.CodeMail) (flow.Message, error) { return flow.Message{}, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	sess := flow.Session{ID: flow.RandomToken(), Tenant: "docs.example.com", Email: "bob@contoso.com", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	if _, err := svc.Redeem(ctx, sess); err != nil {
		b.Fatal(err)
	}
	sealer := keys.SessionSealer(1000)
	value, _ := sealer.SealSession("email_otp_session", "docs.example.com", sess)
	// First sight: values that differ (each seal has its own nonce) through
	// a one-entry cache, so every open is a miss.
	var values []string
	if cached == 0 {
		sealer = keys.SessionSealer(1)
		for range 1024 {
			v, _ := sealer.SealSession("email_otp_session", "docs.example.com", sess)
			values = append(values, v)
		}
	}
	var before float64
	if commands != nil {
		before = commands()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s flow.Session
		var err error
		v := value
		if values != nil {
			v = values[i%len(values)]
		}
		s, err = sealer.OpenSession("email_otp_session", "docs.example.com", v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, "docs.example.com", s); err != nil {
			b.Fatal(err)
		}
	}
	if commands != nil {
		b.StopTimer()
		b.ReportMetric((commands()-before)/float64(b.N), "redis-commands/op")
	}
}

// benchService is a service on the memory store that delivers nothing.
func benchService(b *testing.B, store flow.Store) *flow.Service {
	keys, _ := flow.NewKeys(flow.NewSecret())
	policy, _ := flow.NewPolicy([]string{"*@contoso.com"}, nil, false)
	svc, err := flow.New(flow.Config{
		CodeTTL: 30 * time.Minute, SessionTTL: time.Hour, CodeLength: 8, MaxAttempts: 5,
		Policy: policy, Keys: keys, Store: store,
		Guests:     directory.New(&certmagic.FileStorage{Path: b.TempDir()}, 1000, time.Hour),
		Dispatcher: flow.DispatcherFunc(func(context.Context, flow.Envelope) error { return nil }),
		Compose:    func(m flow.CodeMail) (flow.Message, error) { return flow.Message{To: m.To, Text: m.Code}, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkSend is the send step: address, policy, directory, code, hash,
// store, enqueue (the email's rendering is the composer's, left out here).
func BenchmarkSend(b *testing.B) {
	svc := benchService(b, memstore.New(memstore.Limits{}))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Send(ctx, flow.SendRequest{Tenant: "acme", Email: "bob@contoso.com", ClientIP: "192.0.2.1"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWrongCode is one wrong guess: hash and atomic count.
func BenchmarkVerifyWrongCode(b *testing.B) {
	svc := benchService(b, memstore.New(memstore.Limits{}))
	ctx := context.Background()
	res, _ := svc.Send(ctx, flow.SendRequest{Tenant: "acme", Email: "bob@contoso.com"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%4 == 3 { // stay below max_attempts
			b.StopTimer()
			res, _ = svc.Send(ctx, flow.SendRequest{Tenant: "acme", Email: "bob@contoso.com"})
			b.StartTimer()
		}
		if _, err := svc.Verify(ctx, "acme", res.Challenge.ID, "00000000"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPendingChallengeMemory reports the memory store's bytes per
// pending challenge after a flood of a million sends to a store that keeps
// 100 000: the sends past the bound are refused (flow.ErrBusy), and were the
// bound not kept, the figure would be ten times as large.
func BenchmarkPendingChallengeMemory(b *testing.B) {
	const held, flood = 100_000, 1_000_000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		store := memstore.New(memstore.Limits{MaxChallenges: held})
		svc := benchService(b, store)
		ctx := context.Background()
		for j := 0; j < flood; j++ {
			if _, err := svc.Send(ctx, flow.SendRequest{Tenant: "acme", Email: fmt.Sprintf("g%d@contoso.com", j)}); err != nil && !errors.Is(err, flow.ErrBusy) {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/held, "bytes/challenge")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-after-flood")
		runtime.KeepAlive(store)
	}
}
