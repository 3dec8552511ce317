package memstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/storetest"
)

func TestBoundedUnderFlood(t *testing.T) {
	s := New(Limits{MaxChallenges: 1000, MaxRevocations: 1000})
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < 20000; i++ {
		email := fmt.Sprintf("u%d@x.co", i)
		c := flow.Challenge{ID: flow.IdentityTag("t", email) + ".x", Tenant: "t", Email: email, ExpiresAt: now.Add(time.Hour), MaxAttempts: 5}
		if err := s.SaveChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		_ = s.RevokeSession(ctx, c.ID, now.Add(time.Hour))
	}
	if n := s.challenges.Len(); n > 1000 {
		t.Errorf("%d challenges kept, limit 1000", n)
	}
	if n := s.revoked.Len(); n > 1000 {
		t.Errorf("%d revocations kept, limit 1000", n)
	}
	if _, err := s.LoadChallenge(ctx, flow.IdentityTag("t", "u19999@x.co")+".x", now); err != nil {
		t.Errorf("the newest challenge was dropped: %v", err)
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

// A flood of sends (cooldowns, send counters, challenges) doesn't evict
// security state: locks and wrong-try counts have their own cache.
func TestFloodOfSendsKeepsLocks(t *testing.T) {
	s := New(Limits{MaxChallenges: 100, MaxSecurity: 100})
	ctx := context.Background()
	now := time.Now()
	lock, fail := "lock:"+flow.IdentityTag("t", "victim@x.co"), "fail:"+flow.IdentityTag("t", "victim@x.co")
	_ = s.SetFlag(ctx, lock, now.Add(time.Hour))
	_, _, _ = s.Count(ctx, fail, time.Hour, now)
	for i := 0; i < 10_000; i++ {
		tag := flow.IdentityTag("t", fmt.Sprintf("u%d@x.co", i))
		_ = s.SetFlag(ctx, "cooldown:"+tag, now.Add(time.Hour))
		_, _, _ = s.Count(ctx, "send:addr:"+tag, time.Hour, now)
	}
	if _, up, _ := s.Flag(ctx, lock, now); !up {
		t.Error("a flood of sends evicted the lock")
	}
	if n, _, _ := s.Count(ctx, fail, time.Hour, now); n != 2 {
		t.Errorf("wrong-try count after the flood: %d, want 2", n)
	}
}
