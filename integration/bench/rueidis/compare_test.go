// Package rueidis compares the two ways issue 15 allowed for answering
// "is this session signed out?" without a Redis round trip: the change feed
// the Redis store uses (pub/sub announcements, answers remembered for at most
// session_cache) and RESP3 server-assisted client-side caching (rueidis's
// DoCache, Redis tracking the keys each client read). A module of its own, so
// the gateway does not depend on rueidis:
//
//	cd integration/bench/rueidis && go test -bench . -benchtime 200000x
package rueidis

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// sessions checked per benchmark: a node's signed-in guests.
const sessions = 10_000

// measure runs check over the sessions round-robin and reports, beside the
// time, Redis's own count of commands per check and the keys Redis tracks
// for client-side caching.
func measure(b *testing.B, srv *redisserver.Server, check func(id string) (bool, error)) {
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("sid-%05d", i)
	}
	for _, id := range ids { // every session seen once: the steady state
		if _, err := check(id); err != nil {
			b.Fatal(err)
		}
	}
	before := srv.CommandsProcessed(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := check(ids[i%sessions]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	tracked, _ := strconv.ParseFloat(srv.Info(b, "stats", "tracking_total_keys"), 64)
	b.ReportMetric((srv.CommandsProcessed(b)-before)/float64(b.N), "redis-commands/op")
	b.ReportMetric(tracked, "tracked-keys")
}

func BenchmarkSessionCheckWithoutRoundTrip(b *testing.B) {
	srv := redisserver.Start(b)
	ctx := context.Background()

	b.Run("change-feed", func(b *testing.B) {
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
		b.Cleanup(func() { rdb.Close() })
		store := redisstore.New(rdb, redisstore.Options{SessionCache: time.Second})
		store.Watch()
		b.Cleanup(store.Close)
		for !store.Watching() {
			time.Sleep(time.Millisecond)
		}
		measure(b, srv, func(id string) (bool, error) { return store.SessionRevoked(ctx, id, time.Now()) })
	})
	b.Run("rueidis-client-side-caching", func(b *testing.B) {
		client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(client.Close)
		// rueidis caches read-only commands it knows; EXISTS is not one,
		// so the check is a GET of the same key (nil: not signed out).
		measure(b, srv, func(id string) (bool, error) {
			err := client.DoCache(ctx, client.B().Get().Key("email_otp:revoked:{"+id+"}").Cache(), time.Second).Error()
			if rueidis.IsRedisNil(err) {
				return false, nil
			}
			return err == nil, err
		})
	})
}
