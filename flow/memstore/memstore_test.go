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
