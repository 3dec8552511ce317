// Package directory is the guest directory: one record per tenant and
// address (invited or redeemed, by whom and when, last sign-in, the paths it
// opens), kept in a key-value storage that every node shares (Caddy's storage
// in production) behind a short-lived cache, so the check on every request is
// a memory lookup.
package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/caddy-email-otp/internal/textcheck"
	"github.com/otpgate/caddy-email-otp/internal/ttlcache"
)

// Status of a guest.
type Status string

// Statuses.
const (
	Invited  Status = "invited"  // invited, not signed in yet
	Redeemed Status = "redeemed" // signed in at least once since the invitation (or reset)
	Revoked  Status = "revoked"  // may not sign in; sessions ended
)

// Sources: how a guest last proved who they are. A provider's is
// "oidc:<provider>", the Method of its sessions.
const (
	SourceOTP     = "otp"     // a code (or its one-tap link): the guest proved the mailbox
	SourcePasskey = "passkey" // a passkey made after a code
)

// Guest is one record.
type Guest struct {
	Tenant        string     `json:"tenant"`
	Email         string     `json:"email"`
	Status        Status     `json:"status"`
	Source        string     `json:"source"`
	InvitedBy     string     `json:"invited_by,omitempty"`
	InvitedAt     *time.Time `json:"invited_at,omitempty"`
	InviteExpires *time.Time `json:"invite_expires,omitempty"`
	RedeemedAt    *time.Time `json:"redeemed_at,omitempty"`
	LastSignIn    *time.Time `json:"last_sign_in,omitempty"`
	// Paths, if any, are the path prefixes (inside the tenant) the guest may
	// open; none means the whole tenant.
	Paths []string `json:"paths,omitempty"`
	// AskConsent: the invitation asks the guest to agree before their
	// first sign-in (Invitation.AskConsent).
	AskConsent bool `json:"ask_consent,omitempty"`
	// SessionsNotBefore voids the sessions issued before it (revoke, reset).
	SessionsNotBefore *time.Time `json:"sessions_not_before,omitempty"`
	// PasskeyHandle is the WebAuthn user handle of the guest's passkeys in
	// this tenant: random, made at the first enrolment.
	PasskeyHandle []byte    `json:"passkey_handle,omitempty"`
	Passkeys      []Passkey `json:"passkeys,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// MayGetCode reports whether the record lets the guest ask for a code at now:
// redeemed, or invited and the invitation not expired.
func (g Guest) MayGetCode(now time.Time) bool {
	switch g.Status {
	case Redeemed:
		return true
	case Invited:
		return g.InviteExpires == nil || now.Before(*g.InviteExpires)
	}
	return false
}

// Invitation reports whether an admin invited the guest and the invitation
// still admits them (redeemed, or not expired); a record made by a sign-in
// through the allow list admits nobody by itself.
func (g Guest) Invitation(now time.Time) bool {
	return g.InvitedAt != nil && g.MayGetCode(now)
}

// SessionValid reports whether a session issued at issued is still good.
func (g Guest) SessionValid(issued time.Time) bool {
	if g.Status == Revoked {
		return false
	}
	return g.SessionsNotBefore == nil || !issued.Before(*g.SessionsNotBefore)
}

// Opens reports whether the guest may open rel, a path relative to the
// tenant root ("/docs/a.pdf").
func (g Guest) Opens(rel string) bool {
	if len(g.Paths) == 0 {
		return true
	}
	for _, p := range g.Paths {
		if rel == strings.TrimSuffix(p, "/") || strings.HasPrefix(rel, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// CheckPaths validates path prefixes: absolute, clean, no query.
func CheckPaths(paths []string) error {
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#;\\") || textcheck.HasControl(p) || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
			return fmt.Errorf("path %q: use a clean absolute path such as /reports/", p)
		}
	}
	return nil
}

// KV is the storage the directory needs; certmagic.Storage (Caddy's) is one.
// Load answers an error wrapping fs.ErrNotExist for a missing key.
type KV interface {
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, path string, recursive bool) ([]string, error)
}

// Errors.
var (
	ErrNotFound = errors.New("no such guest")
	ErrRevoked  = errors.New("the guest's access was revoked")
)

const prefix = "email_otp/guests"

// Directory reads and writes guests.
type Directory struct {
	kv    KV
	cache *Cache
	late  *lateIndex
}

// Cache holds recently read records; directories that share one see each
// other's changes at once.
type Cache = ttlcache.Cache[guestID, Guest]

// guestID names a guest in the cache; a struct key costs no allocation on
// the hot path, unlike the storage key.
type guestID struct{ tenant, email string }

// NewCache returns a cache of size records, each kept for ttl: a change made
// through a directory with another cache (another node) is seen within ttl.
func NewCache(size int, ttl time.Duration) *Cache {
	return ttlcache.New[guestID, Guest](size, ttl)
}

// New returns a directory on kv with its own cache.
func New(kv KV, cacheSize int, ttl time.Duration) *Directory {
	return WithCache(kv, NewCache(cacheSize, ttl))
}

// WithCache returns a directory on kv that shares cache.
func WithCache(kv KV, cache *Cache) *Directory {
	d := &Directory{kv: kv, cache: cache}
	d.late = newLateIndex(d)
	return d
}

// Close writes the last sign-ins still owed to the index. A directory
// that is never closed leaves that to the next node's repair.
func (d *Directory) Close() error { return d.late.close(context.Background()) }

// tenantDir is the storage folder of a tenant's records. PathEscape leaves
// dots alone: "." and ".." (which no gateway produces) are escaped here too,
// so no tenant id can name the folder above or the prefix itself.
func tenantDir(tenant string) string {
	esc := url.PathEscape(tenant)
	if strings.Trim(esc, ".") == "" {
		esc = "%2E" + strings.ReplaceAll(esc, ".", "%2E")
	}
	return prefix + "/" + esc
}

func key(tenant, email string) string {
	h := sha256.Sum256([]byte(email))
	return tenantDir(tenant) + "/" + hex.EncodeToString(h[:16]) + ".json"
}

// RecordKey is where a guest's record is stored: for filling a storage in
// bulk (benchmarks, tests of a directory of 100 000), after which the
// first list builds the index.
func RecordKey(tenant, email string) string { return key(tenant, email) }

// Get returns the guest, or ErrNotFound.
func (d *Directory) Get(ctx context.Context, tenant, email string) (Guest, error) {
	ck := guestID{tenant, email}
	if g, ok := d.cache.Get(ck); ok {
		return g, nil
	}
	g, err := d.load(ctx, key(tenant, email))
	if err == nil {
		d.cache.Add(ck, g)
	}
	// "Not found" is not cached: another node may record a sign-in at any
	// moment, and its guest must not be turned away here for the TTL.
	return g, err
}

// Forget drops the cached record of email in tenant: another node changed it.
func (d *Directory) Forget(tenant, email string) { d.cache.Remove(guestID{tenant, email}) }

// ForgetAll drops every cached record: changes may have been missed.
func (d *Directory) ForgetAll() { d.cache.Purge() }

func (d *Directory) load(ctx context.Context, k string) (Guest, error) {
	data, err := d.kv.Load(ctx, k)
	if errors.Is(err, fs.ErrNotExist) {
		return Guest{}, ErrNotFound
	}
	if err != nil {
		return Guest{}, err
	}
	var g Guest
	if err := json.Unmarshal(data, &g); err != nil {
		return Guest{}, fmt.Errorf("guest record %s is damaged: %w", k, err)
	}
	return g, nil
}

// recordFiles are the keys of the tenant's records: none before the first.
func (d *Directory) recordFiles(ctx context.Context, tenant string) ([]string, error) {
	keys, err := d.kv.List(ctx, tenantDir(tenant), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(keys, func(k string) bool { return !strings.HasSuffix(k, ".json") }), nil
}

// Update changes one guest under the storage's lock, so two nodes (or an
// admin and a sign-in) can't overwrite each other. change gets the current
// record and whether it exists; it returns the record to store, or remove
// true to delete it, or an error to change nothing.
func (d *Directory) Update(ctx context.Context, tenant, email string, now time.Time,
	change func(g *Guest, exists bool) (remove bool, err error)) (Guest, error) {
	k := key(tenant, email)
	if err := d.kv.Lock(ctx, k); err != nil {
		return Guest{}, err
	}
	defer d.kv.Unlock(context.WithoutCancel(ctx), k) //nolint:errcheck // the lock expires by itself
	defer d.cache.Remove(guestID{tenant, email})
	g, err := d.load(ctx, key(tenant, email))
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Guest{}, err
	}
	if !exists {
		g = Guest{Tenant: tenant, Email: email, Source: SourceOTP}
	}
	indexed := entryOf(g)
	remove, err := change(&g, exists)
	if err != nil {
		return Guest{}, err
	}
	if remove {
		if !exists {
			return Guest{}, ErrNotFound
		}
		if err := d.index(ctx, g, true, now); err != nil {
			return Guest{}, err
		}
		return g, d.kv.Delete(ctx, k)
	}
	// Each change gets its own update time, even under a stopped clock:
	// the index tells a change done from one under way by it.
	if next := g.UpdatedAt.Add(time.Nanosecond); now.Before(next) {
		now = next
	}
	g.UpdatedAt = now.UTC()
	data, err := json.Marshal(g)
	if err != nil {
		return Guest{}, err
	}
	late := false
	switch changed := entryOf(g); {
	case !exists || changed.status != indexed.status || changed.source != indexed.source:
		// The index first: see index.go for why that order survives a
		// crash.
		if err := d.index(ctx, g, false, now); err != nil {
			return Guest{}, err
		}
	case changed.lastSignIn != indexed.lastSignIn:
		// A returning guest's sign-in: see lateindex.go. The marker is
		// written before the record, the entry queued after it.
		if err := d.late.start(ctx); err != nil {
			return Guest{}, err
		}
		late = true
	}
	if err := d.kv.Store(ctx, k, data); err != nil {
		return Guest{}, err
	}
	if late {
		d.late.add(tenant, email)
	}
	return g, nil
}

// VoidSessions ends every session of g issued up to now. Sessions carry whole
// seconds, so the cut is rounded up: a sign-in in the same second as the cut
// is void too (the guest signs in again), never the other way round.
func (g *Guest) VoidSessions(now time.Time) {
	t := now.UTC().Truncate(time.Second)
	if !t.Equal(now.UTC()) {
		t = t.Add(time.Second)
	}
	g.SessionsNotBefore = &t
}

// RecordSignIn notes a successful sign-in by source (SourceOTP, a
// provider's): it creates the record of a guest who came through the allow
// list, redeems an invitation, and keeps the source, so a guest whose domain
// gets a provider later is shown as such at their next sign-in.
func (d *Directory) RecordSignIn(ctx context.Context, tenant, email, source string, now time.Time) (Guest, error) {
	return d.Update(ctx, tenant, email, now, func(g *Guest, _ bool) (bool, error) {
		if g.Status == Revoked {
			return false, ErrRevoked
		}
		g.Source = source
		t := now.UTC()
		if g.Status != Redeemed {
			g.Status, g.RedeemedAt = Redeemed, &t
		}
		g.LastSignIn = &t
		return false, nil
	})
}
