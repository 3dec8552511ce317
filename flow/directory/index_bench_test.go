package directory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	. "github.com/otpgate/caddy-email-otp/flow/directory"
)

// benchGuests is the size of the tenant the index is measured with.
const benchGuests = 100_000

// fillTenant writes n guest records straight into kv, as a directory of
// that size would hold them (a third invited, most redeemed by code, some
// by a provider or passkey, a few revoked), then builds the index the way
// a first page would.
func fillTenant(b *testing.B, kv KV, tenant string, n int) *Directory {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	now := time.Now().Add(-48 * time.Hour)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				g := benchGuest(tenant, i, now)
				data, _ := json.Marshal(g)
				if err := kv.Store(ctx, RecordKey(tenant, g.Email), data); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	d := New(kv, 100_000, time.Second)
	built := time.Now()
	if _, err := d.Find(ctx, tenant, Query{Limit: 1}); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d guests written in %s, index built in %s", n, built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	return d
}

func benchGuest(tenant string, i int, now time.Time) Guest {
	domain := []string{"contoso.com", "fabrikam.com", "globex.example", "initech.example", "umbrella.example"}[i%5]
	g := Guest{Tenant: tenant, Email: fmt.Sprintf("guest%06d@%s", i, domain), Status: Redeemed, Source: SourceOTP, UpdatedAt: now}
	invited := now.Add(-time.Duration(i) * time.Second)
	g.InvitedAt, g.InvitedBy = &invited, "ops@acme.example"
	switch {
	case i%3 == 0:
		g.Status = Invited
	case i%97 == 0:
		g.Status = Revoked
	default:
		signed := now.Add(-time.Duration(i%(30*24)) * time.Hour)
		g.RedeemedAt, g.LastSignIn = &invited, &signed
		if i%7 == 0 {
			g.Source = "oidc:contoso"
		} else if i%11 == 0 {
			g.Source = SourcePasskey
		}
	}
	return g
}

// benchFind measures pages of the queries an operator asks, reporting the
// 95th percentile as well as the mean.
func benchFind(b *testing.B, d *Directory, tenant string) {
	week := time.Now().Add(-7 * 24 * time.Hour)
	for _, bq := range []struct {
		name string
		q    Query
	}{
		{"first-page", Query{}},
		{"search-one-address", Query{Search: "guest054321@"}},
		{"search-domain-redeemed", Query{Search: "@fabrikam.com", Status: Redeemed}},
		{"provider-since-a-week", Query{Source: "oidc", SignedInAfter: &week}},
		{"page-in-the-middle", Query{After: "guest050000@contoso.com"}},
		{"latest-sign-ins-first", Query{Sort: SortLastSignIn}},
		{"domain-by-latest-sign-in", Query{Search: "@fabrikam.com", Sort: SortLastSignIn}},
	} {
		b.Run(bq.name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				page, err := d.Find(context.Background(), tenant, bq.q)
				took = append(took, time.Since(start))
				if err != nil || len(page.Guests) == 0 {
					b.Fatalf("%d guests, %v", len(page.Guests), err)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}

// BenchmarkFind100k: pages of a 100 000-guest tenant on each storage.
func BenchmarkFind100k(b *testing.B) {
	for _, st := range benchStorages {
		b.Run(st.name, func(b *testing.B) {
			d := fillTenant(b, st.open(b), "acme", benchGuests)
			benchFind(b, d, "acme")
		})
	}
}

// BenchmarkSignInBeside100k: what a sign-in writes to the directory (the
// record and its index entry), in a tenant of 100 000 guests and in an
// empty one on the same storage.
func BenchmarkSignInBeside100k(b *testing.B) {
	for _, st := range benchStorages {
		b.Run(st.name, func(b *testing.B) {
			d := fillTenant(b, st.open(b), "acme", benchGuests)
			for _, tenant := range []string{"empty", "acme"} {
				b.Run(map[string]string{"empty": "empty-tenant", "acme": "100k-tenant"}[tenant], func(b *testing.B) {
					i := 0
					for b.Loop() {
						email := benchGuest(tenant, (i*7919)%benchGuests, time.Now()).Email
						if _, err := d.RecordSignIn(context.Background(), tenant, email, SourceOTP, time.Now()); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		})
	}
}

var benchStorages = []struct {
	name string
	open func(b *testing.B) KV
}{
	{"file_system", func(b *testing.B) KV { return &certmagic.FileStorage{Path: b.TempDir()} }},
	{"redis", func(b *testing.B) KV { return redisGuestStorage(b) }},
}
