package memstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/store/storetest"
)

// A flood fills the store and is then refused; what it found there stays:
// the codes guests are typing and the revocations. Room comes back as
// entries expire.
func TestFloodIsRefusedAndDropsNothingLive(t *testing.T) {
	s := New(Limits{MaxChallenges: 1000, MaxRevocations: 1000})
	ctx := context.Background()
	now := time.Now()
	mk := func(i int, expires time.Time) flow.Challenge {
		email := fmt.Sprintf("u%d@x.co", i)
		return flow.Challenge{ID: flow.IdentityTag("t", email) + ".0123456789abcdef.x", Tenant: "t", Email: email, CreatedAt: now, ExpiresAt: expires, MaxAttempts: 5}
	}
	typed := mk(0, now.Add(30*time.Minute))
	if err := s.SaveChallenge(ctx, typed); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "signed-out", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := 1; i < 20000; i++ {
		if err := s.SaveChallenge(ctx, mk(i, now.Add(30*time.Minute))); errors.Is(err, flow.ErrBusy) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, fmt.Sprintf("s%d", i), now.Add(time.Hour)); err != nil && !errors.Is(err, flow.ErrBusy) {
			t.Fatal(err)
		}
	}
	if n := s.challenges.len(); n != 1000 {
		t.Errorf("%d challenges kept, limit 1000", n)
	}
	if refused != 20000-1000 {
		t.Errorf("%d sends refused past the limit, want %d", refused, 20000-1000)
	}
	if _, err := s.LoadChallenge(ctx, typed.ID, now); err != nil {
		t.Errorf("the flood dropped the code a guest is typing: %v", err)
	}
	if r, _ := s.SessionRevoked(ctx, "signed-out", now); !r {
		t.Error("the flood dropped a revocation")
	}
	// Once the flood's codes expire, new ones fit again.
	later := mk(30000, now.Add(time.Hour))
	later.CreatedAt = now.Add(31 * time.Minute)
	if err := s.SaveChallenge(ctx, later); err != nil {
		t.Errorf("a code after the flood expired: %v", err)
	}
}

func TestRevocationEndsAtSessionExpiry(t *testing.T) {
	s := New(Limits{})
	ctx := context.Background()
	now := time.Now()
	_ = s.RevokeSession(ctx, "sid", now.Add(time.Minute))
	if r, _ := s.SessionRevoked(ctx, "sid", now); !r {
		t.Error("not revoked")
	}
	if r, _ := s.SessionRevoked(ctx, "other", now); r {
		t.Error("an unrelated session is revoked")
	}
	if r, _ := s.SessionRevoked(ctx, "sid", now.Add(time.Minute)); r {
		t.Error("revocation outlives the session")
	}
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) flow.Store { return New(Limits{}) })
}

// A flood of sends (cooldowns, send counters, challenges) can't push out
// security state or an address's send counter.
func TestFloodOfSendsKeepsLocks(t *testing.T) {
	s := New(Limits{MaxChallenges: 100, MaxSecurity: 100})
	ctx := context.Background()
	now := time.Now()
	lock, fail := "lock:"+flow.IdentityTag("t", "victim@x.co"), "fail:"+flow.IdentityTag("t", "victim@x.co")
	_ = s.SetFlag(ctx, lock, now.Add(time.Hour))
	_, _, _ = s.Count(ctx, fail, time.Hour, now)
	victim := "send:addr:" + flow.IdentityTag("t", "victim@x.co")
	_, _, _ = s.Count(ctx, victim, time.Hour, now)
	for i := 0; i < 10_000; i++ {
		tag := flow.IdentityTag("t", fmt.Sprintf("u%d@x.co", i))
		_ = s.SetFlag(ctx, "cooldown:"+tag, now.Add(time.Hour))
		_, _, _ = s.Count(ctx, "send:addr:"+tag, time.Hour, now)
	}
	if n, _, _ := s.Peek(ctx, victim, now); n != 1 {
		t.Errorf("the victim's send count after the flood: %d, want 1", n)
	}
	if _, up, _ := s.Flag(ctx, lock, now); !up {
		t.Error("a flood of sends evicted the lock")
	}
	if n, _, _ := s.Count(ctx, fail, time.Hour, now); n != 2 {
		t.Errorf("wrong-try count after the flood: %d, want 2", n)
	}
}
