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
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/otpgate/caddy-email-otp/flow/redisstore"
	"github.com/otpgate/caddy-email-otp/integration/redisserver"
)

// sessions checked per benchmark: a node's signed-in guests.
const sessions = 10_000

// info reads one numeric field of INFO section.
func info(b *testing.B, rdb *goredis.Client, section, field string) float64 {
	text, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
}

// measure runs check over the sessions round-robin and reports, beside the
// time, Redis's own count of commands per check and the keys Redis tracks
// for client-side caching.
func measure(b *testing.B, rdb *goredis.Client, check func(id string) (bool, error)) {
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("sid-%05d", i)
	}
	for _, id := range ids { // every session seen once: the steady state
		if _, err := check(id); err != nil {
			b.Fatal(err)
		}
	}
	before := info(b, rdb, "stats", "total_commands_processed")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := check(ids[i%sessions]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((info(b, rdb, "stats", "total_commands_processed")-before)/float64(b.N), "redis-commands/op")
	b.ReportMetric(info(b, rdb, "stats", "tracking_total_keys"), "tracked-keys")
}

func BenchmarkSessionCheckWithoutRoundTrip(b *testing.B) {
	srv := redisserver.Start(b)
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rdb.Close() })
	ctx := context.Background()

	b.Run("change-feed", func(b *testing.B) {
		store := redisstore.New(goredis.NewClient(&goredis.Options{Addr: srv.Addr}), redisstore.Options{SessionCache: time.Second})
		store.Watch()
		b.Cleanup(store.Close)
		for !store.Watching() {
			time.Sleep(time.Millisecond)
		}
		measure(b, rdb, func(id string) (bool, error) { return store.SessionRevoked(ctx, id, time.Now()) })
	})
	b.Run("rueidis-client-side-caching", func(b *testing.B) {
		client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(client.Close)
		// rueidis caches read-only commands it knows; EXISTS is not one,
		// so the check is a GET of the same key (nil: not signed out).
		measure(b, rdb, func(id string) (bool, error) {
			err := client.DoCache(ctx, client.B().Get().Key("email_otp:revoked:{"+id+"}").Cache(), time.Second).Error()
			if rueidis.IsRedisNil(err) {
				return false, nil
			}
			return err == nil, err
		})
	})
}
