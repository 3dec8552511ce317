package directory

import (
	"context"
	"time"
)

// The operations an operator performs on the directory (the admin API and
// the CLI call them). Each is one locked update; a guest who is not in the
// directory is ErrNotFound, except for Invite, which creates them.

// Invitation is what an invite records.
type Invitation struct {
	InvitedBy string     // who invited, shown in the email and the directory
	Expires   *time.Time // when the invitation lapses if not redeemed; nil: never
	Paths     []string   // path prefixes the guest may open; none: the whole tenant
	// AskConsent: the guest agrees on a page before their first sign-in,
	// as under the gateway's consent option, though it is off.
	AskConsent bool
}

// Invite records an invitation of email to tenant. A guest who redeemed
// before stays redeemed (a new invitation changes what they may open, not
// whether they signed in); anyone else is invited. created says whether the
// guest is new to the directory. undo puts the record back as it was: the
// invitation is only worth keeping if its email could be queued.
func (d *Directory) Invite(ctx context.Context, tenant, email string, inv Invitation, now time.Time) (g Guest, created bool, undo func(context.Context) error, err error) {
	var before Guest
	g, err = d.Update(ctx, tenant, email, now, func(g *Guest, exists bool) (bool, error) {
		before, created = *g, !exists
		at := now.UTC()
		if g.Status != Redeemed {
			g.Status = Invited
		}
		g.InvitedAt, g.InvitedBy, g.InviteExpires, g.Paths, g.AskConsent = &at, inv.InvitedBy, inv.Expires, inv.Paths, inv.AskConsent
		return false, nil
	})
	undo = func(ctx context.Context) error {
		_, err := d.Update(ctx, tenant, email, now, func(g *Guest, _ bool) (bool, error) {
			*g = before
			return created, nil
		})
		return err
	}
	return g, created, undo, err
}

// Revoke stops the guest from signing in, ends their sessions and removes
// their passkeys.
func (d *Directory) Revoke(ctx context.Context, tenant, email string, now time.Time) (Guest, error) {
	return d.change(ctx, tenant, email, now, func(g *Guest) bool {
		g.Status, g.Passkeys = Revoked, nil
		g.VoidSessions(now)
		return false
	})
}

// Reset undoes a redemption: the guest's sessions end, their passkeys are
// removed, and their next sign-in (by code: the mailbox is proved again)
// redeems the invitation again, asking for consent where it is on.
func (d *Directory) Reset(ctx context.Context, tenant, email string, now time.Time) (Guest, error) {
	return d.change(ctx, tenant, email, now, func(g *Guest) bool {
		g.Status, g.RedeemedAt, g.Passkeys = Invited, nil, nil
		g.VoidSessions(now)
		return false
	})
}

// Delete removes the guest and their passkeys; without a record their
// sessions no longer open.
func (d *Directory) Delete(ctx context.Context, tenant, email string, now time.Time) (Guest, error) {
	g, err := d.change(ctx, tenant, email, now, func(*Guest) bool { return true })
	if err != nil {
		return g, err
	}
	// A stale index entry opens nothing (PasskeyOwner checks the record's
	// handle); removing it keeps the storage tidy.
	return g, d.dropPasskeyIndex(ctx, g)
}

// change applies op to an existing guest; op says whether to remove them.
func (d *Directory) change(ctx context.Context, tenant, email string, now time.Time, op func(g *Guest) (remove bool)) (Guest, error) {
	return d.Update(ctx, tenant, email, now, func(g *Guest, exists bool) (bool, error) {
		if !exists {
			return false, ErrNotFound
		}
		return op(g), nil
	})
}
