// Package memstore is the in-process flow.Store: tables bounded in size
// whose entries live until their own expiry. It is the default store; it is
// shared by every gateway of one Caddy process and survives config reloads
// (the adapter keeps it in a caddy.UsagePool), but not restarts, and it is
// not shared between nodes.
//
// A full table refuses new entries (flow.ErrBusy: the guest is asked to try
// again shortly) and never drops a live one, so no flood of sends can push
// out the code a guest is typing, an address's send counter or a lock.
package memstore

import (
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Limits bound the store's memory. Zero values take the defaults.
type Limits struct {
	// MaxChallenges pending codes (default 100000). The sending counters
	// get twice as many entries and the cooldowns as many, so a flood runs
	// into this limit first.
	MaxChallenges int
	// MaxRevocations of signed-out sessions remembered until their expiry.
	// Default 100000.
	MaxRevocations int
	// MaxSecurity entries of security state (wrong-try counts, locks,
	// back-offs, "this wasn't me"; see flow.IsSecurityKey), kept apart from
	// challenges, cooldowns and send counters so that a flood of sends
	// can't fill them: only wrong guesses at real codes and "this wasn't
	// me" links write here. Default 100000.
	MaxSecurity int
}

// Store implements flow.Store in memory.
type Store struct {
	// mu makes each check-and-change atomic.
	mu sync.Mutex
	// challenges holds each identity's one live challenge per browser,
	// keyed by flow.ChallengeKeyOf: a newer challenge replaces the entry.
	challenges *table[flow.Challenge]
	revoked    *table[struct{}]
	counters   *table[counter]
	flags      *table[struct{}]
	ceremonies *table[[]byte]
	// The security state's own tables (flow.IsSecurityKey).
	secCounters *table[counter]
	secFlags    *table[struct{}]
}

// countersFor and flagsFor pick the table that holds key.
func (s *Store) countersFor(key string) *table[counter] {
	if flow.IsSecurityKey(key) {
		return s.secCounters
	}
	return s.counters
}

func (s *Store) flagsFor(key string) *table[struct{}] {
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
	l.MaxChallenges = cmpOr(l.MaxChallenges, 100_000)
	l.MaxRevocations = cmpOr(l.MaxRevocations, 100_000)
	l.MaxSecurity = cmpOr(l.MaxSecurity, 100_000)
	return &Store{
		challenges: newTable[flow.Challenge]("max_challenges", l.MaxChallenges),
		revoked:    newTable[struct{}]("max_revocations", l.MaxRevocations),
		counters:   newTable[counter]("max_challenges (twice, for send counters)", 2*l.MaxChallenges),
		flags:      newTable[struct{}]("max_challenges (for cooldowns)", l.MaxChallenges),
		ceremonies: newTable[[]byte]("max_challenges (for passkey ceremonies)", l.MaxChallenges),

		secCounters: newTable[counter]("max_security", l.MaxSecurity),
		secFlags:    newTable[struct{}]("max_security", l.MaxSecurity),
	}
}

// cmpOr is n when positive, else the default.
func cmpOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// SaveChallenge implements flow.Store.
func (s *Store) SaveChallenge(_ context.Context, c flow.Challenge) error {
	key, ok := flow.ChallengeKeyOf(c.ID)
	if !ok {
		return fmt.Errorf("challenge id %q has no identity tag", c.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.challenges.put(key, c, c.ExpiresAt, c.CreatedAt)
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
	c, _, ok := s.challenges.get(key, now)
	if !ok || c.ID != id {
		return flow.Challenge{}, false
	}
	return c, true
}

func (s *Store) remove(c flow.Challenge) {
	if key, ok := flow.ChallengeKeyOf(c.ID); ok {
		s.challenges.remove(key)
	}
}

// replace stores a changed challenge under the key it already holds, which
// needs no room.
func (s *Store) replace(c flow.Challenge) {
	if key, ok := flow.ChallengeKeyOf(c.ID); ok {
		_ = s.challenges.put(key, c, c.ExpiresAt, c.CreatedAt)
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
	s.replace(c)
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
	if c, _, ok := s.challenges.get(key, time.Now()); ok && c.ID == id {
		c.Delivery = state
		s.replace(c)
	}
	return nil
}

// RevokeSession implements flow.Store.
func (s *Store) RevokeSession(_ context.Context, id string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked.put(id, struct{}{}, until, time.Now())
}

// SessionRevoked implements flow.Store.
func (s *Store) SessionRevoked(_ context.Context, id string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, ok := s.revoked.get(id, now)
	return ok, nil
}

// Count implements flow.Store.
func (s *Store) Count(_ context.Context, key string, window time.Duration, now time.Time) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	counters := s.countersFor(key)
	c, _, ok := counters.get(key, now)
	if !ok {
		c = counter{resets: now.Add(window)}
	}
	c.n++
	if err := counters.put(key, c, c.resets, now); err != nil {
		return 0, time.Time{}, err
	}
	return c.n, c.resets, nil
}

// Peek implements flow.Store.
func (s *Store) Peek(_ context.Context, key string, now time.Time) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, ok := s.countersFor(key).get(key, now)
	if !ok {
		return 0, time.Time{}, nil
	}
	return c.n, c.resets, nil
}

// ResetCount implements flow.Store.
func (s *Store) ResetCount(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countersFor(key).remove(key)
	return nil
}

// SetFlag implements flow.Store.
func (s *Store) SetFlag(_ context.Context, key string, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flagsFor(key).put(key, struct{}{}, until, time.Now())
}

// Flag implements flow.Store.
func (s *Store) Flag(_ context.Context, key string, now time.Time) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, until, ok := s.flagsFor(key).get(key, now)
	return until, ok, nil
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

// SaveCeremony implements flow.Store.
func (s *Store) SaveCeremony(_ context.Context, id string, state []byte, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ceremonies.put(id, state, until, time.Now())
}

// TakeCeremony implements flow.Store.
func (s *Store) TakeCeremony(_ context.Context, id string, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state, _, ok := s.ceremonies.get(id, now)
	if !ok {
		return nil, flow.ErrChallengeNotFound
	}
	s.ceremonies.remove(id)
	return state, nil
}

var _ flow.Store = (*Store)(nil)
