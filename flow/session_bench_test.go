package flow_test

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/devmail"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/flow/memstore"
	"github.com/otpgate/caddy-email-otp/flow/redisstore"
	"github.com/otpgate/caddy-email-otp/integration/redisserver"
)

// BenchmarkSessionCheck is the work of every signed-in request: open the
// sealed cookie value, then check tenant, expiry, sign-out and the guest's
// record (cached).
func BenchmarkSessionCheck(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchSessionCheck(b, memstore.New(memstore.Limits{}), 1000) })
	// A guest's first request after sign-in, or a node's first sight of a
	// value: the whole securecookie open (HMAC, AES-CTR, parse).
	b.Run("memory-first-sight", func(b *testing.B) { benchSessionCheck(b, memstore.New(memstore.Limits{}), 0) })
	b.Run("redis", func(b *testing.B) {
		srv := redisserver.Start(b)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		b.Cleanup(func() { rdb.Close() })
		benchSessionCheck(b, redisstore.New(rdb, redisstore.Options{}), 1000)
	})
}

func benchSessionCheck(b *testing.B, store flow.Store, cached int) {
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
	value, _ := sealer.Seal("email_otp_session|docs.example.com", sess)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s flow.Session
		var err error
		if cached > 0 {
			s, err = sealer.OpenSession("email_otp_session|docs.example.com", value)
		} else {
			err = sealer.Open("email_otp_session|docs.example.com", value, &s)
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, "docs.example.com", s); err != nil {
			b.Fatal(err)
		}
	}
}
