// Package redisstore is the flow.Store that lets several gateway nodes act as
// one: pending codes, wrong-try counts and sign-outs live in Redis (or Valkey,
// Sentinel, Cluster) through go-redis's UniversalClient. Every
// check-and-change is one Lua script on one key, so it is atomic on the
// server and fits one Cluster slot; every key expires with its data.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/ttlcache"
)

// Store implements flow.Store on Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string

	// grace, if positive, lets a session that this node found unrevoked
	// within grace pass while Redis can't be asked; zero fails closed.
	grace     time.Duration
	lastGood  *ttlcache.Cache[string, time.Time]
	graceOnce sync.Once

	// feed, if SessionCache is positive, lets session checks be answered
	// from memory while subscribed to the change feed (see feed.go).
	feed *feed
}

// Options tune a Store.
type Options struct {
	// Prefix of every key. Default "email_otp:".
	Prefix string
	// SessionGrace: see Store.grace. Default 0 (fail closed).
	SessionGrace time.Duration
	// SessionCache is the longest a node answers "not signed out" from
	// memory, once Watch has subscribed it to the change feed. Zero or
	// negative: every check asks Redis.
	SessionCache time.Duration
	// MaxCachedSessions bounds that memory. Default 100000.
	MaxCachedSessions int
}

// New returns a store on rdb; it does no I/O (see Ping).
func New(rdb redis.UniversalClient, o Options) *Store {
	if o.Prefix == "" {
		o.Prefix = "email_otp:"
	}
	s := &Store{rdb: rdb, prefix: o.Prefix, grace: o.SessionGrace}
	if s.grace > 0 {
		s.lastGood = ttlcache.New[string, time.Time](100_000, s.grace)
	}
	if o.SessionCache > 0 {
		if o.MaxCachedSessions <= 0 {
			o.MaxCachedSessions = 100_000
		}
		s.feed = &feed{
			sessions:  ttlcache.New[string, bool](o.MaxCachedSessions, o.SessionCache),
			listeners: make(map[int]func(string, string)),
		}
	}
	return s
}

// Ping checks that Redis answers and accepts the credentials.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// challengeKey is the one key of an identity's live challenge from one
// browser. The braces are a Cluster hash tag: the key's slot is the
// identity's.
func (s *Store) challengeKey(id string) (string, bool) {
	key, ok := flow.ChallengeKeyOf(id)
	if !ok {
		return "", false
	}
	tag, slot, _ := strings.Cut(key, ".")
	return s.prefix + "{" + tag + "}:challenge:" + slot, true
}

func (s *Store) revokedKey(sessionID string) string { return s.prefix + "revoked:{" + sessionID + "}" }

func ms(t time.Time) int64 { return t.UnixMilli() }

// SaveChallenge implements flow.Store: the identity's key is replaced whole,
// which cancels the older challenge.
func (s *Store) SaveChallenge(ctx context.Context, c flow.Challenge) error {
	key, ok := s.challengeKey(c.ID)
	if !ok {
		return fmt.Errorf("challenge id %q has no identity tag", c.ID)
	}
	ttl := time.Until(c.ExpiresAt)
	if ttl <= 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key,
			"id", c.ID, "tenant", c.Tenant, "email", c.Email, "hash", c.CodeHash,
			"resource", c.Resource, "created", ms(c.CreatedAt), "expires", ms(c.ExpiresAt),
			"attempts", c.Attempts, "max", c.MaxAttempts, "delivery", int(c.Delivery), "scope", c.Scope)
		p.PExpire(ctx, key, ttl+time.Second)
		return nil
	})
	return err
}

func parseChallenge(fields []any) (flow.Challenge, error) {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		m[k] = v
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	if m["id"] == "" {
		return flow.Challenge{}, errors.New("challenge record without id")
	}
	return flow.Challenge{
		ID:          m["id"],
		Tenant:      m["tenant"],
		Email:       m["email"],
		CodeHash:    []byte(m["hash"]),
		Resource:    m["resource"],
		CreatedAt:   time.UnixMilli(num("created")),
		ExpiresAt:   time.UnixMilli(num("expires")),
		Attempts:    int(num("attempts")),
		MaxAttempts: int(num("max")),
		Delivery:    flow.DeliveryState(num("delivery")),
		Scope:       m["scope"],
	}, nil
}

// LoadChallenge implements flow.Store.
func (s *Store) LoadChallenge(ctx context.Context, id string, now time.Time) (flow.Challenge, error) {
	key, ok := s.challengeKey(id)
	if !ok {
		return flow.Challenge{}, flow.ErrChallengeNotFound
	}
	m, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return flow.Challenge{}, err
	}
	if m["id"] != id {
		return flow.Challenge{}, flow.ErrChallengeNotFound
	}
	fields := make([]any, 0, 2*len(m))
	for k, v := range m {
		fields = append(fields, k, v)
	}
	c, err := parseChallenge(fields)
	if err != nil {
		return flow.Challenge{}, err
	}
	if !now.Before(c.ExpiresAt) {
		return flow.Challenge{}, flow.ErrChallengeNotFound
	}
	return c, nil
}

// AttemptChallenge implements flow.Store with one script: compare, then
// delete on a match or at the last try, or count the miss.
func (s *Store) AttemptChallenge(ctx context.Context, id string, codeHash []byte, now time.Time) (flow.AttemptResult, flow.Challenge, error) {
	key, ok := s.challengeKey(id)
	if !ok {
		return flow.AttemptGone, flow.Challenge{}, nil
	}
	res, err := attempt.Run(ctx, s.rdb, []string{key}, id, codeHash, ms(now)).Slice()
	if err != nil {
		return 0, flow.Challenge{}, err
	}
	result, _ := res[0].(int64)
	if flow.AttemptResult(result) == flow.AttemptGone {
		return flow.AttemptGone, flow.Challenge{}, nil
	}
	fields, _ := res[1].([]any)
	c, err := parseChallenge(fields)
	if err != nil {
		return 0, flow.Challenge{}, err
	}
	return flow.AttemptResult(result), c, nil
}

// SetDelivery implements flow.Store; a challenge that is gone or replaced is
// left alone.
func (s *Store) SetDelivery(ctx context.Context, id string, state flow.DeliveryState) error {
	key, ok := s.challengeKey(id)
	if !ok {
		return nil
	}
	return delivery.Run(ctx, s.rdb, []string{key}, id, int(state)).Err()
}

// CancelChallenge implements flow.Store: the key is deleted only if it still
// holds challenge id.
func (s *Store) CancelChallenge(ctx context.Context, id string, _ time.Time) error {
	key, ok := s.challengeKey(id)
	if !ok {
		return nil
	}
	return cancel.Run(ctx, s.rdb, []string{key}, id).Err()
}

// RevokeSession implements flow.Store, and announces the sign-out on the
// change feed so other nodes forget their answer for the session at once.
func (s *Store) RevokeSession(ctx context.Context, id string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	if err := s.rdb.Set(ctx, s.revokedKey(id), 1, ttl).Err(); err != nil {
		return err
	}
	if s.feed != nil {
		s.feed.forgetSession(id, true)
	}
	// A lost announcement costs at most the other nodes' SessionCache.
	_ = s.rdb.Publish(ctx, s.channel(), msgSession+id).Err()
	return nil
}

// SessionRevoked implements flow.Store: from memory while the change feed
// is trusted and the answer is younger than SessionCache, else one EXISTS.
func (s *Store) SessionRevoked(ctx context.Context, id string, now time.Time) (bool, error) {
	var epoch uint64
	if s.feed != nil {
		revoked, known, asked := s.feed.revoked(id)
		if known {
			return revoked, nil
		}
		epoch = asked
	}
	n, err := s.rdb.Exists(ctx, s.revokedKey(id)).Result()
	if err != nil {
		if s.grace > 0 {
			if at, ok := s.lastGood.Get(id); ok && now.Sub(at) < s.grace {
				return false, nil
			}
		}
		return false, err
	}
	if n == 0 && s.grace > 0 {
		s.lastGood.Add(id, now)
	}
	if epoch != 0 { // asked while the feed was trusted
		s.feed.remember(id, n > 0, epoch)
	}
	return n > 0, nil
}

func (s *Store) counterKey(key string) string { return s.prefix + "count:{" + key + "}" }
func (s *Store) flagKey(key string) string    { return s.prefix + "flag:{" + key + "}" }

// Count implements flow.Store: INCR and, for a new counter, PEXPIRE, in one
// script, so parallel counts on many nodes are exact.
func (s *Store) Count(ctx context.Context, key string, window time.Duration, now time.Time) (int, time.Time, error) {
	res, err := count.Run(ctx, s.rdb, []string{s.counterKey(key)}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, time.Time{}, err
	}
	return int(res[0]), now.Add(time.Duration(res[1]) * time.Millisecond), nil
}

// Peek implements flow.Store.
func (s *Store) Peek(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	k := s.counterKey(key)
	pipe := s.rdb.Pipeline()
	get, ttl := pipe.Get(ctx, k), pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, time.Time{}, err
	}
	n, err := get.Int()
	if errors.Is(err, redis.Nil) || ttl.Val() <= 0 {
		return 0, time.Time{}, nil
	} else if err != nil {
		return 0, time.Time{}, err
	}
	return n, now.Add(ttl.Val()), nil
}

// ResetCount implements flow.Store.
func (s *Store) ResetCount(ctx context.Context, key string) error {
	return s.rdb.Del(ctx, s.counterKey(key)).Err()
}

// SetFlag implements flow.Store.
func (s *Store) SetFlag(ctx context.Context, key string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	return s.rdb.Set(ctx, s.flagKey(key), until.UnixMilli(), ttl).Err()
}

// Flag implements flow.Store.
func (s *Store) Flag(ctx context.Context, key string, now time.Time) (time.Time, bool, error) {
	return flagState(s.rdb.Get(ctx, s.flagKey(key)), now)
}

// flagState reads a flag's GET: until when it is raised, and whether it is
// at now (a missing key is a flag never raised or gone).
func flagState(get *redis.StringCmd, now time.Time) (time.Time, bool, error) {
	v, err := get.Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	until := time.UnixMilli(v)
	return until, now.Before(until), nil
}

// FirstFlag implements flow.Store: one pipeline of GETs, one round trip
// (per Cluster node: each flag's key is its own slot).
func (s *Store) FirstFlag(ctx context.Context, keys []string, now time.Time) (int, time.Time, error) {
	pipe := s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	for i, key := range keys {
		gets[i] = pipe.Get(ctx, s.flagKey(key))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, time.Time{}, err
	}
	for i, get := range gets {
		until, up, err := flagState(get, now)
		if err != nil {
			return 0, time.Time{}, err
		}
		if up {
			return i, until, nil
		}
	}
	return -1, time.Time{}, nil
}

var _ flow.Store = (*Store)(nil)

func (s *Store) ceremonyKey(id string) string { return s.prefix + "ceremony:{" + id + "}" }

// SaveCeremony implements flow.Store.
func (s *Store) SaveCeremony(ctx context.Context, id string, state []byte, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	return s.rdb.Set(ctx, s.ceremonyKey(id), state, ttl).Err()
}

// TakeCeremony implements flow.Store: GETDEL reads and deletes in one step,
// so two nodes finishing the same ceremony can't both get it.
func (s *Store) TakeCeremony(ctx context.Context, id string, _ time.Time) ([]byte, error) {
	state, err := s.rdb.GetDel(ctx, s.ceremonyKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, flow.ErrChallengeNotFound
	}
	return state, err
}
