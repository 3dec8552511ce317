package directory

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// A passkey's life in the directory: made for the record's handle, found by
// its handle in its tenant only, its counter only going forward, and gone
// with a revocation, a reset or the record.
func TestPasskeyLifecycle(t *testing.T) {
	ctx := context.Background()
	d := New(&certmagic.FileStorage{Path: t.TempDir()}, 10, time.Hour)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	pass := func(Guest, Passkey) error { return nil }

	if _, err := d.PasskeyHandle(ctx, "acme", "ann@example.com", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a handle for nobody: %v", err)
	}
	if _, err := d.RecordSignIn(ctx, "acme", "ann@example.com", "otp", now); err != nil {
		t.Fatal(err)
	}
	handle, err := d.PasskeyHandle(ctx, "acme", "ann@example.com", now)
	if err != nil || len(handle) != 32 {
		t.Fatalf("handle %x, %v", handle, err)
	}
	if again, _ := d.PasskeyHandle(ctx, "acme", "ann@example.com", now); !bytes.Equal(again, handle) {
		t.Error("a second call made another handle")
	}
	pk := Passkey{ID: []byte("cred-1"), PublicKey: []byte("k"), CreatedAt: now, Device: "Chrome on Android"}
	if _, err := d.AddPasskey(ctx, "acme", "ann@example.com", []byte("another handle"), pk, now); !errors.Is(err, ErrNotRedeemed) {
		t.Errorf("a passkey made for another handle: %v", err)
	}
	if _, err := d.AddPasskey(ctx, "acme", "ann@example.com", handle, pk, now); err != nil {
		t.Fatal(err)
	}
	if g, err := d.PasskeyOwner(ctx, "acme", handle); err != nil || g.Email != "ann@example.com" || len(g.Passkeys) != 1 {
		t.Fatalf("owner: %+v, %v", g, err)
	}
	if _, err := d.PasskeyOwner(ctx, "globex", handle); !errors.Is(err, ErrNotFound) {
		t.Errorf("the handle in another tenant: %v", err)
	}

	// Counters: 0 and 0 is an authenticator that keeps none; otherwise only forward.
	use := func(n uint32) error {
		_, err := d.RecordPasskeySignIn(ctx, "acme", "ann@example.com", PasskeyUse{ID: pk.ID, SignCount: n}, now, pass)
		return err
	}
	for _, step := range []struct {
		count uint32
		want  error
	}{{0, nil}, {0, nil}, {5, nil}, {5, ErrPasskeyCloned}, {3, ErrPasskeyCloned}, {0, ErrPasskeyCloned}, {6, nil}} {
		if err := use(step.count); !errors.Is(err, step.want) {
			t.Errorf("counter %d: %v, want %v", step.count, err, step.want)
		}
	}
	if _, err := d.RecordPasskeySignIn(ctx, "acme", "ann@example.com", PasskeyUse{ID: []byte("nope")}, now, pass); !errors.Is(err, ErrNoPasskey) {
		t.Errorf("an unknown passkey: %v", err)
	}
	g, _ := d.Get(ctx, "acme", "ann@example.com")
	if got, _ := g.Passkey(pk.ID); got.SignCount != 6 || got.LastUsed == nil || g.LastSignIn == nil {
		t.Errorf("after the uses: %+v", got)
	}

	// A reset voids and removes; so does a revocation; a delete drops the index.
	for name, op := range map[string]func(context.Context, string, string, time.Time) (Guest, error){"reset": d.Reset, "revoke": d.Revoke} {
		if _, err := d.Update(ctx, "acme", "ann@example.com", now, func(g *Guest, _ bool) (bool, error) {
			g.Status, g.Passkeys = Redeemed, []Passkey{pk}
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Minute)
		g, err := op(ctx, "acme", "ann@example.com", later)
		if err != nil || len(g.Passkeys) != 0 {
			t.Errorf("%s left %d passkeys (%v)", name, len(g.Passkeys), err)
		}
		if g.Status = Redeemed; g.PasskeyValid(pk) {
			t.Errorf("after a %s, a passkey made before it is still valid", name)
		}
	}
	if _, err := d.Delete(ctx, "acme", "ann@example.com", now); err != nil {
		t.Fatal(err)
	}
	if _, err := d.kv.Load(ctx, passkeyIndexKey("acme", handle)); err == nil {
		t.Error("the index still names the deleted guest")
	}
}
