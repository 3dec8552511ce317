package flow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// A passkey sign-in meets the same policy as a code sign-in, on the record
// as it is at that moment, and gives a passkey session of the usual length.
func TestPasskeySignInHoldsThePolicy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	enrol := func(tenant, email string) directory.PasskeyUse {
		t.Helper()
		now := f.clock.Now()
		if _, err := f.guests.RecordSignIn(ctx, tenant, email, "otp", now); err != nil {
			t.Fatal(err)
		}
		handle, err := f.guests.PasskeyHandle(ctx, tenant, email, now)
		if err != nil {
			t.Fatal(err)
		}
		pk := directory.Passkey{ID: []byte(email), PublicKey: []byte("k"), CreatedAt: now}
		if _, err := f.guests.AddPasskey(ctx, tenant, email, handle, pk, now); err != nil {
			t.Fatal(err)
		}
		return directory.PasskeyUse{ID: pk.ID}
	}

	use := enrol("acme", "ann@contoso.com")
	f.clock.Advance(26 * time.Hour) // the next day: the first session is over
	s, err := f.svc.PasskeySignIn(ctx, "acme", "ann@contoso.com", use)
	if err != nil || s.Method != flow.MethodPasskey || s.Email != "ann@contoso.com" || s.Expiry().Sub(f.clock.Now()) != 24*time.Hour {
		t.Fatalf("passkey sign-in: %+v, %v", s, err)
	}

	// An address the allow list no longer admits (a guest from another
	// domain who came through an invitation that has since expired).
	inv := time.Now()
	use = enrol("acme", "guest@partner.org")
	if _, err := f.guests.Update(ctx, "acme", "guest@partner.org", f.clock.Now(), func(g *directory.Guest, _ bool) (bool, error) {
		exp := f.clock.Now().Add(time.Hour)
		g.InvitedAt, g.InviteExpires = &inv, &exp
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PasskeySignIn(ctx, "acme", "guest@partner.org", use); err != nil {
		t.Errorf("an invited guest's passkey: %v", err)
	}
	f.clock.Advance(2 * time.Hour)
	// Redeemed invitations keep admitting; only block, revoke and reset end it.
	if _, err := f.svc.PasskeySignIn(ctx, "acme", "guest@partner.org", use); err != nil {
		t.Errorf("a redeemed invitation past its date: %v", err)
	}

	use = enrol("acme", "x@blocked.contoso.com")
	if _, err := f.svc.PasskeySignIn(ctx, "acme", "x@blocked.contoso.com", use); !errors.Is(err, flow.ErrNotPermitted) {
		t.Errorf("a blocked address: %v, want ErrNotPermitted", err)
	}
	use = enrol("acme", "bob@contoso.com")
	if _, err := f.guests.Revoke(ctx, "acme", "bob@contoso.com", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PasskeySignIn(ctx, "acme", "bob@contoso.com", use); !errors.Is(err, directory.ErrNoPasskey) {
		t.Errorf("a revoked guest (passkeys removed): %v", err)
	}
	// A passkey made before a cut of sessions is void even if still listed.
	use = enrol("acme", "cut@contoso.com")
	f.clock.Advance(time.Minute)
	if _, err := f.guests.Update(ctx, "acme", "cut@contoso.com", f.clock.Now(), func(g *directory.Guest, _ bool) (bool, error) {
		g.VoidSessions(f.clock.Now())
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.PasskeySignIn(ctx, "acme", "cut@contoso.com", use); !errors.Is(err, flow.ErrPasskeyVoid) {
		t.Errorf("a passkey older than the last cut: %v, want ErrPasskeyVoid", err)
	}
}
