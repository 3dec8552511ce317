package funnel_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/internal/funnel"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func storages(t *testing.T, test func(t *testing.T, kv funnel.Storage)) {
	t.Run("file_system", func(t *testing.T) { test(t, &certmagic.FileStorage{Path: t.TempDir()}) })
	t.Run("redis", func(t *testing.T) {
		srv := redisserver.Start(t)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		test(t, redisstore.New(rdb, redisstore.Options{}).GuestStorage())
	})
}

// Two processes count the same tenant; each sees the sum, a restart keeps
// the counts, hours before the window are left out, another tenant's are
// apart, and counts older than Keep go.
func TestCountsAddUpAcrossProcessesAndRestarts(t *testing.T) { storages(t, testCounts) }

func testCounts(t *testing.T, kv funnel.Storage) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC)}
	a, b := funnel.New(kv, c.now), funnel.New(kv, c.now)
	a.Add("acme", "code_sent")
	c.set(c.now().Add(-3 * time.Hour)) // three hours ago, before the window below
	a.Add("acme", "code_sent")
	c.set(time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC))
	b.Add("acme", "code_sent")
	b.Add("acme", "verified")
	b.Add("path:globex", "code_sent")
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// a has not written yet: it counts its own from memory, b's from the
	// storage.
	window := c.now().Add(-2 * time.Hour)
	want := funnel.Counts{"code_sent": 2, "verified": 1}
	if got, err := a.Since(ctx, "acme", window); err != nil || !equal(got, want) {
		t.Errorf("a sees %v %v, want %v", got, err, want)
	}
	if got, _ := b.Since(ctx, "acme", window); !equal(got, funnel.Counts{"code_sent": 1, "verified": 1}) {
		t.Errorf("b sees %v before a wrote (its own and nothing else)", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Since(ctx, "acme", window); !equal(got, want) {
		t.Errorf("b sees %v after a wrote, want %v", got, want)
	}
	if got, _ := b.Since(ctx, "acme", c.now().Add(-24*time.Hour)); got["code_sent"] != 3 {
		t.Errorf("the day's code_sent %d, want 3", got["code_sent"])
	}
	if both, err := b.Windows(ctx, "acme", window, c.now().Add(-24*time.Hour)); err != nil || !equal(both[0], want) || both[1]["code_sent"] != 3 {
		t.Errorf("both windows from one read: %v %v", both, err)
	}
	// a restarts as a new process: its counts stay.
	restarted := funnel.New(kv, c.now)
	if got, _ := restarted.Since(ctx, "acme", window); !equal(got, want) {
		t.Errorf("after a restart: %v, want %v", got, want)
	}
	if got, _ := restarted.Since(ctx, "path:globex", window); !equal(got, funnel.Counts{"code_sent": 1}) {
		t.Errorf("another tenant: %v", got)
	}
	// Nine days later every old count is gone from the storage.
	c.set(c.now().Add(9 * 24 * time.Hour))
	restarted.Add("acme", "delivered")
	if err := restarted.Close(); err != nil {
		t.Fatal(err)
	}
	later := funnel.New(kv, c.now)
	if got, _ := later.Since(ctx, "acme", time.Time{}); !equal(got, funnel.Counts{"delivered": 1}) {
		t.Errorf("nine days later, since ever: %v, want the new count alone", got)
	}
}

func equal(a, b funnel.Counts) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// BenchmarkAdd: what counting one sign-in step costs the request that
// makes it (the write to the storage is in the background).
func BenchmarkAdd(b *testing.B) {
	f := funnel.New(&certmagic.FileStorage{Path: b.TempDir()}, nil)
	tenants := []string{"acme", "path:globex", "contoso.example"}
	i := 0
	for b.Loop() {
		f.Add(tenants[i%3], "code_sent")
		i++
	}
}

// A storage that is gone (Redis stopped) holds Close up no longer than
// its bound: Caddy closes the funnel while it loads the next config.
func TestCloseDoesNotWaitOnAStorageThatIsGone(t *testing.T) {
	srv := redisserver.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 10, DialTimeout: time.Minute})
	defer rdb.Close()
	f := funnel.New(redisstore.New(rdb, redisstore.Options{}).GuestStorage(), nil)
	f.Start()
	f.Add("acme", "code_sent")
	srv.Stop()
	start := time.Now()
	if err := f.Close(); err == nil {
		t.Error("closing with the storage gone reported no error")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Close took %v with the storage gone", took)
	}
}
