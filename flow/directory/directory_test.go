package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func TestDirectoryRoundTripAndSharing(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	a := New(storage, 10, time.Hour) // two nodes on one storage
	b := New(storage, 10, 50*time.Millisecond)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

	if _, err := b.Get(ctx, "acme", "x/y@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty directory: %v", err)
	}
	for _, email := range []string{"x/y@example.com", "alice@example.com"} {
		_, err := a.Update(ctx, "acme", email, now, func(g *Guest, exists bool) (bool, error) {
			if exists {
				t.Errorf("%s exists already", email)
			}
			g.Status, g.InvitedAt, g.InvitedBy, g.Paths = Invited, &now, "ops", []string{"/reports/"}
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// b does not cache "not found": it sees a's write at once.
	g, err := b.Get(ctx, "acme", "x/y@example.com")
	if err != nil || g.Status != Invited || g.InvitedBy != "ops" || g.Source != SourceOTP || g.Tenant != "acme" {
		t.Fatalf("other node reads %+v, %v", g, err)
	}
	list, err := a.List(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].Email != "alice@example.com" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if other, _ := a.List(ctx, "globex"); len(other) != 0 {
		t.Fatalf("globex lists acme's guests: %+v", other)
	}
	g, err = a.RecordSignIn(ctx, "acme", "alice@example.com", "otp", now.Add(time.Hour))
	if err != nil || g.Status != Redeemed || !g.RedeemedAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("sign-in: %+v %v", g, err)
	}
	if _, err := a.Update(ctx, "acme", "alice@example.com", now, func(*Guest, bool) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "acme", "alice@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted guest: %v", err)
	}
	if _, err := a.Update(ctx, "acme", "nobody@example.com", now, func(*Guest, bool) (bool, error) { return true, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting nobody: %v", err)
	}
}

func TestRevokedGuestCannotRedeem(t *testing.T) {
	ctx := context.Background()
	d := New(&certmagic.FileStorage{Path: t.TempDir()}, 10, time.Hour)
	now := time.Now()
	_, _ = d.Update(ctx, "acme", "a@b.co", now, func(g *Guest, _ bool) (bool, error) { g.Status = Revoked; return false, nil })
	if _, err := d.RecordSignIn(ctx, "acme", "a@b.co", "otp", now); !errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v", err)
	}
}

func TestGuestRules(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	cases := []struct {
		g    Guest
		may  bool
		name string
	}{
		{Guest{Status: Invited}, true, "invited, no expiry"},
		{Guest{Status: Invited, InviteExpires: &future}, true, "invited, not expired"},
		{Guest{Status: Invited, InviteExpires: &past}, false, "invitation expired"},
		{Guest{Status: Redeemed, InviteExpires: &past}, true, "redeemed: expiry no longer matters"},
		{Guest{Status: Revoked}, false, "revoked"},
	}
	for _, c := range cases {
		if got := c.g.MayGetCode(now); got != c.may {
			t.Errorf("%s: MayGetCode = %v", c.name, got)
		}
	}
	g := Guest{Paths: []string{"/reports/", "/q3.pdf"}}
	for rel, want := range map[string]bool{"/reports/a.pdf": true, "/reports": true, "/q3.pdf": true, "/reportsX": false, "/": false, "/q3.pdf.bak": false} {
		if g.Opens(rel) != want {
			t.Errorf("Opens(%q) = %v", rel, !want)
		}
	}
	g = Guest{}
	g.VoidSessions(now.Add(500 * time.Millisecond))
	if g.SessionValid(now) || !g.SessionValid(now.Add(time.Second)) {
		t.Error("VoidSessions must void the current second and keep the next")
	}
	if err := CheckPaths([]string{"/a/", "/b.pdf", "/"}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"a", "/a/../b", "/a?x", "//a", "/a;b/", "/a\u2028b/", "/a\x00/"} {
		if CheckPaths([]string{bad}) == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

// A tenant's records are kept under its key: the host tenant "acme" and the
// path tenant "acme" (key "path:acme") are two tenants with two directories.
func TestTenantKeysKeepTenantsOfOneIDApart(t *testing.T) {
	ctx := context.Background()
	d := New(&certmagic.FileStorage{Path: t.TempDir()}, 10, time.Millisecond)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	if _, err := d.Update(ctx, "acme", "old@example.com", now, func(g *Guest, _ bool) (bool, error) {
		g.Status = Revoked
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	key := TenantKey("", "path", "acme")
	if g, err := d.Get(ctx, key, "old@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the host tenant's record read as the path tenant's: %+v %v", g, err)
	}
	if list, err := d.List(ctx, key); err != nil || len(list) != 0 {
		t.Fatalf("path tenant's list: %+v %v", list, err)
	}
	if g, err := d.Get(ctx, "acme", "old@example.com"); err != nil || g.Status != Revoked {
		t.Fatalf("the host tenant's own record: %+v %v", g, err)
	}
	if TenantName("partners/path:acme") != "acme" || TenantKey("partners", "static", "docs") != "partners/static:docs" {
		t.Error("key format")
	}
}

func TestInviteRevokeResetDelete(t *testing.T) {
	ctx := context.Background()
	d := New(&certmagic.FileStorage{Path: t.TempDir()}, 10, time.Millisecond)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	exp := now.Add(7 * 24 * time.Hour)

	// A new guest: invited; undo removes them again.
	g, created, undo, err := d.Invite(ctx, "acme", "bob@x.example", Invitation{InvitedBy: "ops", Expires: &exp, Paths: []string{"/r/"}}, now)
	if err != nil || !created || g.Status != Invited || g.InvitedBy != "ops" || len(g.Paths) != 1 {
		t.Fatalf("invite: %+v %v %v", g, created, err)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "acme", "bob@x.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after undo of a new guest: %v", err)
	}

	// A redeemed guest stays redeemed; undo brings the old record back.
	if _, err := d.RecordSignIn(ctx, "acme", "ann@x.example", "otp", now); err != nil {
		t.Fatal(err)
	}
	g, created, undo, _ = d.Invite(ctx, "acme", "ann@x.example", Invitation{Paths: []string{"/r/"}}, now)
	if created || g.Status != Redeemed || len(g.Paths) != 1 {
		t.Fatalf("re-invite of a redeemed guest: %+v %v", g, created)
	}
	_ = undo(ctx)
	if g, _ := d.Get(ctx, "acme", "ann@x.example"); g.Status != Redeemed || len(g.Paths) != 0 || g.InvitedAt != nil {
		t.Fatalf("after undo: %+v", g)
	}

	if g, err := d.Revoke(ctx, "acme", "ann@x.example", now); err != nil || g.Status != Revoked || g.SessionValid(now.Add(-time.Second)) {
		t.Fatalf("revoke: %+v %v", g, err)
	}
	if g, err := d.Reset(ctx, "acme", "ann@x.example", now); err != nil || g.Status != Invited || g.RedeemedAt != nil {
		t.Fatalf("reset: %+v %v", g, err)
	}
	if _, err := d.Delete(ctx, "acme", "ann@x.example", now); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func(context.Context, string, string, time.Time) (Guest, error){"revoke": d.Revoke, "reset": d.Reset, "delete": d.Delete} {
		if _, err := op(ctx, "acme", "nobody@x.example", now); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of nobody: %v", name, err)
		}
	}
}
