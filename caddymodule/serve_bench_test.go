package emailotp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/assertion"
)

// loadBenchGateway loads a real config (memory store, dev mailer) into Caddy
// and returns its provisioned gateway, so the benchmark measures ServeHTTP
// exactly as Caddy runs it, without the network.
func loadBenchGateway(b *testing.B) *Gateway {
	cfg := fmt.Sprintf(`{
		"admin": {"disabled": true},
		"storage": {"module": "file_system", "root": %q},
		"logging": {"logs": {"default": {"writer": {"output": "discard"}}}},
		"apps": {"http": {"servers": {"bench": {
			"listen": ["127.0.0.1:0"],
			"routes": [{"handle": [{"handler": "email_otp", "tenants": ["docs.example.com"], "allow": ["*"]}]}]
		}}}}
	}`, b.TempDir())
	if err := caddy.Load([]byte(cfg), true); err != nil {
		b.Fatalf("loading the benchmark config: %v", err)
	}
	b.Cleanup(func() { _ = caddy.Stop() })
	for _, g := range gateways.loaded() {
		return g
	}
	b.Fatal("the config loaded no gateway")
	return nil
}

// BenchmarkServeHTTP is the gateway's whole cost per request in front of a
// backend: strip client identity headers, resolve the tenant, open and check
// the session, set the identity headers and placeholders, drop the gateway's
// cookie. "no-session" is a guest turned away with a 401.
func BenchmarkServeHTTP(b *testing.B) {
	g := loadBenchGateway(b)
	t := tenant{Key: "docs.example.com", Root: "/"}
	now := time.Now()
	sess := flow.Session{ID: flow.RandomToken(), Tenant: t.Key, Email: "bob@contoso.com", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	if _, err := g.service.Redeem(context.Background(), sess); err != nil {
		b.Fatal(err)
	}
	value, err := g.sessions.sealer.SealSession(sessionCookie, t.Key, sess)
	if err != nil {
		b.Fatal(err)
	}
	var reached int
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("X-Auth-Email") != sess.Email || r.Header.Get("Cookie") != "theme=dark" {
			return fmt.Errorf("the backend saw email %q and cookies %q", r.Header.Get("X-Auth-Email"), r.Header.Get("Cookie"))
		}
		reached++
		return nil
	})
	request := func(cookie string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://docs.example.com/docs/report.pdf", nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
		r.Header.Set("Accept", "*/*")
		r.Header.Set("X-Auth-Email", "mallory@evil.example")
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	}
	serve := func(b *testing.B, cookie string, want int) {
		template := request(cookie)
		header := template.Header.Clone()
		w := &statusWriter{header: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// Caddy hands every request its own header map; copying it back
			// keeps the copy out of the allocation count.
			r := *template
			r.Header = template.Header
			clear(r.Header)
			for k, v := range header {
				r.Header[k] = v
			}
			clear(w.header)
			w.status = http.StatusOK
			if err := g.ServeHTTP(w, &r, next); err != nil {
				b.Fatal(err)
			}
			if w.status != want {
				b.Fatalf("status %d, want %d", w.status, want)
			}
		}
	}
	b.Run("signed-in", func(b *testing.B) {
		reached = 0
		serve(b, "theme=dark; "+sessionCookie+"="+value, http.StatusOK)
		if reached != b.N {
			b.Fatalf("the backend was reached %d times of %d", reached, b.N)
		}
	})
	b.Run("no-session", func(b *testing.B) {
		serve(b, "theme=dark", http.StatusUnauthorized)
	})
	// The same signed-in request with the signed assertion on: the session's
	// assertion is minted once and then remembered.
	b.Run("signed-in+assertion", func(b *testing.B) {
		ring := &assertion.Ring{}
		if _, err := ring.Rotate(now); err != nil {
			b.Fatal(err)
		}
		names := g.identity
		g.assertion = &assertionSigner{header: "X-Auth-Assertion", audience: []string{"reports-app"}, clock: flow.SystemClock{},
			minter: assertion.NewMinter(ring, 100)}
		g.identity.assertion = g.assertion.header
		defer func() { g.assertion, g.identity = nil, names }()
		reached = 0
		serve(b, "theme=dark; "+sessionCookie+"="+value, http.StatusOK)
		if reached != b.N {
			b.Fatalf("the backend was reached %d times of %d", reached, b.N)
		}
	})
}

// statusWriter is a ResponseWriter that keeps the status and drops the body,
// reused across iterations so only the gateway's allocations are counted.
type statusWriter struct {
	header http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.header }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(code int)        { w.status = code }
