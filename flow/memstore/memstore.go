// Package memstore is the in-process flow.Store: bounded LRU caches with expiry.
// It is the default store; it is shared by every gateway of one Caddy process
// and survives config reloads (the adapter keeps it in a caddy.UsagePool), but
// not restarts, and it is not shared between nodes.
package memstore

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Limits bound the store's memory. Zero values take the defaults.
type Limits struct {
	// MaxChallenges pending codes; the least recently used are dropped past it.
	// Default 100000.
	MaxChallenges int
	// MaxRevocations of signed-out sessions remembered until their expiry.
	// Default 100000.
	MaxRevocations int
	// MaxSecurity entries of security state (wrong-try counts, locks,
	// back-offs, "this wasn't me"; see flow.IsSecurityKey), kept apart from
	// challenges, cooldowns and send counters so that a flood of sends can't
	// evict them: only newer security entries can, and each of those takes a
	// wrong guess at a real code or a "this wasn't me". Default 100000.
	MaxSecurity int
	// Horizon is the longest any entry is kept, whatever its own expiry; it
	// bounds a cache's lifetime sweeps. Default 25h.
	Horizon time.Duration
}

// Store implements flow.Store in memory.
type Store struct {
	// mu makes each check-and-change atomic.
	mu sync.Mutex
	// challenges holds each identity's one live challenge per browser,
	// keyed by flow.ChallengeKeyOf: a newer challenge replaces the entry.
	challenges *expirable.LRU[string, flow.Challenge]
	revoked    *expirable.LRU[string, time.Time]
	counters   *expirable.LRU[string, counter]
	flags      *expirable.LRU[string, time.Time]
	// The security state's own caches (flow.IsSecurityKey).
	secCounters *expirable.LRU[string, counter]
	secFlags    *expirable.LRU[string, time.Time]
}

// countersFor and flagsFor pick the cache that holds key.
func (s *Store) countersFor(key string) *expirable.LRU[string, counter] {
	if flow.IsSecurityKey(key) {
		return s.secCounters
	}
	return s.counters
}

func (s *Store) flagsFor(key string) *expirable.LRU[string, time.Time] {
	if flow.IsSecurityKey(key) {
		return s.secFlags
	}
	return s.flags
}

type counter struct {
	n      int
	resets time.Time
}

// New returns an empty store.
func New(l Limits) *Store {
	if l.MaxChallenges <= 0 {
		l.MaxChallenges = 100_000
	}
	if l.MaxRevocations <= 0 {
		l.MaxRevocations = 100_000
	}
	if l.MaxSecurity <= 0 {
		l.MaxSecurity = 100_000
	}
	if l.Horizon <= 0 {
		l.Horizon = 25 * time.Hour
	}
	return &Store{
		challenges: expirable.NewLRU[string, flow.Challenge](l.MaxChallenges, nil, l.Horizon),
		revoked:    expirable.NewLRU[string, time.Time](l.MaxRevocations, nil, l.Horizon),
		counters:   expirable.NewLRU[string, counter](l.MaxChallenges, nil, l.Horizon),
		flags:      expirable.NewLRU[string, time.Time](l.MaxChallenges, nil, l.Horizon),

		secCounters: expirable.NewLRU[string, counter](l.MaxSecurity, nil, l.Horizon),
		secFlags:    expirable.NewLRU[string, time.Time](l.MaxSecurity, nil, l.Horizon),
	}
}

// SaveChallenge implements flow.Store.
func (s *Store) SaveChallenge(_ context.Context, c flow.Challenge) error {
	key, ok := flow.ChallengeKeyOf(c.ID)
	if !ok {
		return fmt.Errorf("challenge id %q has no identity tag", c.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenges.Add(key, c)
	return nil
}

// CancelChallenge implements flow.Store.
func (s *Store) CancelChallenge(_ context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.live(id, now); ok {
		s.remove(c)
	}
	return nil
}

func (s *Store) live(id string, now time.Time) (flow.Challenge, bool) {
	key, ok := flow.ChallengeKeyOf(id)
	if !ok {
		return flow.Challenge{}, false
	}
	c, ok := s.challenges.Get(key)
	if !ok || c.ID != id {
		return flow.Challenge{}, false
	}
	if !now.Before(c.ExpiresAt) {
		s.challenges.Remove(key)
		return flow.Challenge{}, false
	}
	return c, true
}

func (s *Store) remove(c flow.Challenge) {
	if key, ok := flow.ChallengeKeyOf(c.ID); ok {
		s.challenges.Remove(key)
	}
}

// LoadChallenge implements flow.Store.
func (s *Store) LoadChallenge(_ context.Context, id string, now time.Time) (flow.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.live(id, now)
	if !ok {
		return flow.Challenge{}, flow.ErrChallengeNotFound
	}
	return c, nil
}

// AttemptChallenge implements flow.Store.
func (s *Store) AttemptChallenge(_ context.Context, id string, codeHash []byte, now time.Time) (flow.AttemptResult, flow.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.live(id, now)
	if !ok {
		return flow.AttemptGone, flow.Challenge{}, nil
	}
	if subtle.ConstantTimeCompare(c.CodeHash, codeHash) == 1 {
		s.remove(c)
		return flow.AttemptMatched, c, nil
	}
	c.Attempts++
	if c.Attempts >= c.MaxAttempts {
		s.remove(c)
		return flow.AttemptExhausted, c, nil
	}
	key, _ := flow.ChallengeKeyOf(c.ID)
	s.challenges.Add(key, c)
	return flow.AttemptMismatched, c, nil
}

// SetDelivery implements flow.Store.
func (s *Store) SetDelivery(_ context.Context, id string, state flow.DeliveryState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, ok := flow.ChallengeKeyOf(id)
	if !ok {
		return nil
	}
	if c, ok := s.challenges.Peek(key); ok && c.ID == id {
		c.Delivery = state
		s.challenges.Add(key, c)
	}
	return nil
}

// RevokeSession implements flow.Store.
func (s *Store) RevokeSession(_ context.Context, id string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked.Add(id, until)
	return nil
}

// SessionRevoked implements flow.Store.
func (s *Store) SessionRevoked(_ context.Context, id string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.revoked.Get(id)
	return ok && now.Before(until), nil
}

// Count implements flow.Store.
func (s *Store) Count(_ context.Context, key string, window time.Duration, now time.Time) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counters := s.countersFor(key)
	c, ok := counters.Get(key)
	if !ok || !now.Before(c.resets) {
		c = counter{resets: now.Add(window)}
	}
	c.n++
	counters.Add(key, c)
	return c.n, c.resets, nil
}

// Peek implements flow.Store.
func (s *Store) Peek(_ context.Context, key string, now time.Time) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.countersFor(key).Peek(key)
	if !ok || !now.Before(c.resets) {
		return 0, time.Time{}, nil
	}
	return c.n, c.resets, nil
}

// ResetCount implements flow.Store.
func (s *Store) ResetCount(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countersFor(key).Remove(key)
	return nil
}

// SetFlag implements flow.Store.
func (s *Store) SetFlag(_ context.Context, key string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flagsFor(key).Add(key, until)
	return nil
}

// Flag implements flow.Store.
func (s *Store) Flag(_ context.Context, key string, now time.Time) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.flagsFor(key).Get(key)
	if !ok || !now.Before(until) {
		return time.Time{}, false, nil
	}
	return until, true, nil
}

// FirstFlag implements flow.Store.
func (s *Store) FirstFlag(ctx context.Context, keys []string, now time.Time) (int, time.Time, error) {
	for i, key := range keys {
		if until, up, _ := s.Flag(ctx, key, now); up {
			return i, until, nil
		}
	}
	return -1, time.Time{}, nil
}

var _ flow.Store = (*Store)(nil)
