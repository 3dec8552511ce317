package directory

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// Passkey is one of a guest's passkeys: the public half of a WebAuthn
// credential and what the checks at each sign-in need. It belongs to one
// tenant and one address, the record it sits in.
type Passkey struct {
	ID        []byte `json:"id"`
	PublicKey []byte `json:"public_key"` // COSE-encoded
	SignCount uint32 `json:"sign_count"`
	// BackupEligible never changes for a credential; a sign-in that says
	// otherwise is refused. BackupState (synced or not) may.
	BackupEligible bool       `json:"backup_eligible,omitempty"`
	BackupState    bool       `json:"backup_state,omitempty"`
	UserVerified   bool       `json:"user_verified,omitempty"`
	AAGUID         []byte     `json:"aaguid,omitempty"`
	Transports     []string   `json:"transports,omitempty"`
	Device         string     `json:"device"` // "Chrome on Android": what the guest and operators see
	CreatedAt      time.Time  `json:"created_at"`
	LastUsed       *time.Time `json:"last_used,omitempty"`
}

// MaxPasskeys a guest may hold in one tenant: one per device they use is a
// handful; the bound keeps a record small.
const MaxPasskeys = 10

// PasskeyUse is what a passkey sign-in changes on its passkey.
type PasskeyUse struct {
	ID           []byte
	SignCount    uint32
	BackupState  bool
	UserVerified bool
}

// Errors of passkeys.
var (
	ErrNoPasskey = errors.New("no such passkey")
	// ErrPasskeyCloned: the signature counter went back, so a second copy
	// of the private key may be in use.
	ErrPasskeyCloned   = errors.New("the passkey's signature counter went back: the credential may have been copied")
	ErrTooManyPasskeys = fmt.Errorf("a guest holds at most %d passkeys: delete one first", MaxPasskeys)
	ErrNotRedeemed     = errors.New("only a guest who signed in may hold passkeys")
)

// Passkey returns the guest's passkey id.
func (g Guest) Passkey(id []byte) (Passkey, bool) {
	i := slices.IndexFunc(g.Passkeys, func(p Passkey) bool { return bytes.Equal(p.ID, id) })
	if i < 0 {
		return Passkey{}, false
	}
	return g.Passkeys[i], true
}

// PasskeyValid reports whether pk still signs the guest in: the guest is
// redeemed (a reset or revocation voids every passkey, and the mailbox is
// proved again before a new one), and pk was made after the last cut of
// sessions.
func (g Guest) PasskeyValid(pk Passkey) bool {
	return g.Status == Redeemed && g.SessionValid(pk.CreatedAt.Truncate(time.Second))
}

// passkeyIndexDir is the storage folder of a tenant's passkey owners: one
// entry per user handle, whose value is the address. A passkey sign-in
// brings the handle, never the address.
func passkeyIndexDir(tenant string) string {
	return "email_otp/passkey_owners/" + strings.TrimPrefix(tenantDir(tenant), prefix+"/")
}

func passkeyIndexKey(tenant string, handle []byte) string {
	return passkeyIndexDir(tenant) + "/" + hex.EncodeToString(handle)
}

// PasskeyOwner returns the address whose passkeys carry handle in tenant,
// or ErrNotFound. The record is checked against the handle too: an index
// entry outlives a record deleted by hand.
func (d *Directory) PasskeyOwner(ctx context.Context, tenant string, handle []byte) (Guest, error) {
	if len(handle) == 0 || len(handle) > 64 {
		return Guest{}, ErrNotFound
	}
	email, err := d.kv.Load(ctx, passkeyIndexKey(tenant, handle))
	if errors.Is(err, fs.ErrNotExist) {
		return Guest{}, ErrNotFound
	}
	if err != nil {
		return Guest{}, err
	}
	g, err := d.load(ctx, key(tenant, string(email)))
	if err != nil {
		return Guest{}, err
	}
	if !bytes.Equal(g.PasskeyHandle, handle) {
		return Guest{}, ErrNotFound
	}
	return g, nil
}

// PasskeyHandle returns the guest's user handle, making one (32 random
// bytes: it says nothing about the guest to whoever reads it off an
// authenticator) the first time.
func (d *Directory) PasskeyHandle(ctx context.Context, tenant, email string, now time.Time) ([]byte, error) {
	g, err := d.Update(ctx, tenant, email, now, func(g *Guest, exists bool) (bool, error) {
		if !exists {
			return false, ErrNotFound
		}
		if g.Status != Redeemed {
			return false, ErrNotRedeemed
		}
		if len(g.PasskeyHandle) > 0 {
			return false, nil
		}
		g.PasskeyHandle = make([]byte, 32)
		if _, err := rand.Read(g.PasskeyHandle); err != nil {
			return false, err
		}
		return false, d.kv.Store(ctx, passkeyIndexKey(tenant, g.PasskeyHandle), []byte(email))
	})
	return g.PasskeyHandle, err
}

// AddPasskey records a new passkey of a redeemed guest (one with the same
// id replaces it), made for the user handle handle: if the record's handle
// is another by now (the guest was deleted and came back), the passkey
// would never find its owner and is refused with ErrNotRedeemed.
func (d *Directory) AddPasskey(ctx context.Context, tenant, email string, handle []byte, pk Passkey, now time.Time) (Guest, error) {
	return d.Update(ctx, tenant, email, now, func(g *Guest, exists bool) (bool, error) {
		switch {
		case !exists:
			return false, ErrNotFound
		case g.Status != Redeemed || !bytes.Equal(g.PasskeyHandle, handle):
			return false, ErrNotRedeemed
		}
		g.Passkeys = slices.DeleteFunc(g.Passkeys, func(p Passkey) bool { return bytes.Equal(p.ID, pk.ID) })
		if len(g.Passkeys) >= MaxPasskeys {
			return false, ErrTooManyPasskeys
		}
		g.Passkeys = append(g.Passkeys, pk)
		return false, nil
	})
}

// RecordPasskeySignIn notes a passkey sign-in: its counter, flags and use,
// and the guest's last sign-in. check decides, on the record as it is under
// the lock, whether the sign-in stands; a counter that goes back (but for
// authenticators that keep none, which always say 0) is ErrPasskeyCloned.
func (d *Directory) RecordPasskeySignIn(ctx context.Context, tenant, email string, use PasskeyUse, now time.Time, check func(Guest, Passkey) error) (Guest, error) {
	return d.Update(ctx, tenant, email, now, func(g *Guest, exists bool) (bool, error) {
		if !exists {
			return false, ErrNotFound
		}
		i := slices.IndexFunc(g.Passkeys, func(p Passkey) bool { return bytes.Equal(p.ID, use.ID) })
		if i < 0 {
			return false, ErrNoPasskey
		}
		pk := &g.Passkeys[i]
		if err := check(*g, *pk); err != nil {
			return false, err
		}
		if (use.SignCount != 0 || pk.SignCount != 0) && use.SignCount <= pk.SignCount {
			return false, ErrPasskeyCloned
		}
		t := now.UTC()
		pk.SignCount, pk.BackupState, pk.LastUsed = use.SignCount, use.BackupState, &t
		pk.UserVerified = pk.UserVerified || use.UserVerified
		g.LastSignIn, g.Source = &t, SourcePasskey
		return false, nil
	})
}

// DeletePasskey removes one of the guest's passkeys; it no longer signs in.
func (d *Directory) DeletePasskey(ctx context.Context, tenant, email string, id []byte, now time.Time) (Guest, error) {
	return d.Update(ctx, tenant, email, now, func(g *Guest, exists bool) (bool, error) {
		if !exists {
			return false, ErrNotFound
		}
		n := len(g.Passkeys)
		g.Passkeys = slices.DeleteFunc(g.Passkeys, func(p Passkey) bool { return bytes.Equal(p.ID, id) })
		if len(g.Passkeys) == n {
			return false, ErrNoPasskey
		}
		return false, nil
	})
}

// dropPasskeyIndex removes the guest's entry from the passkey owners.
func (d *Directory) dropPasskeyIndex(ctx context.Context, g Guest) error {
	if len(g.PasskeyHandle) == 0 {
		return nil
	}
	err := d.kv.Delete(ctx, passkeyIndexKey(g.Tenant, g.PasskeyHandle))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
