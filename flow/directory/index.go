package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The guest index: what a page of guests is chosen by (address, status,
// source, last sign-in), kept beside the records so that listing a tenant
// of 100 000 guests reads 256 small shards and the page's records, never
// every record.
//
// A guest's entry lives in the shard named by the first byte of the hash
// that also names its record. Shards are sorted by address, so a page is a
// merge of their heads.
//
// Consistency. A record change writes the guest's entry first, marked
// pending, then the record, all under the record's lock (two nodes never
// change one guest at once) and the shard's lock (nor one shard). A pending
// entry is a claim that a change may be under way: whoever reads it trusts
// the record instead, and the next change to the shard settles it once the
// record shows the same change (or, after settleAfter, takes the record as
// it is: its writer died). So a crash between the two writes leaves an
// entry that is checked, never a record that is missing from the index.
//
// Loss and damage. A manifest beside the shards says which shards exist. No
// manifest (never built, or lost): the whole index is rebuilt from the
// records. A shard the manifest names that is missing or unreadable is
// rebuilt from its records alone.

const (
	indexPrefix = "email_otp/guest_index"
	indexFormat = "email-otp guest index 1"
	shardCount  = 256
	// settleAfter is longer than any record change holds its lock.
	settleAfter = 5 * time.Minute
	// shardReaders bounds the shard reads of one page in flight at once.
	shardReaders = 8
)

// errDamaged marks an index key that does not parse.
var errDamaged = errors.New("damaged")

// entry is a guest as the index knows them.
type entry struct {
	email      string
	status     Status
	source     string
	lastSignIn int64 // UnixNano; 0: never
	updated    int64 // the record's UpdatedAt, UnixNano
	pending    bool
}

func entryOf(g Guest) entry {
	e := entry{email: g.Email, status: g.Status, source: g.Source, updated: g.UpdatedAt.UnixNano()}
	if g.LastSignIn != nil {
		e.lastSignIn = g.LastSignIn.UnixNano()
	}
	return e
}

// shows reports whether the record is the entry's change: the entry may
// be settled.
func (e entry) shows(g Guest) bool { return g.UpdatedAt.UnixNano() == e.updated }

// matches reports whether a guest with this entry can be one of q's.
func (e entry) matches(q Query) bool {
	g := Guest{Email: e.email}
	if !e.pending {
		g.Status, g.Source = e.status, e.source
		if e.lastSignIn != 0 {
			t := time.Unix(0, e.lastSignIn)
			g.LastSignIn = &t
		}
		return q.Matches(g)
	}
	// A pending entry's guest is whatever their record says.
	return q.Search == "" || strings.Contains(e.email, strings.ToLower(q.Search))
}

// shardOf is the shard of email's entry.
func shardOf(email string) byte {
	h := sha256.Sum256([]byte(email))
	return h[0]
}

func indexDir(tenant string) string {
	return indexPrefix + "/" + strings.TrimPrefix(tenantDir(tenant), prefix+"/")
}

func shardKey(tenant string, shard byte) string {
	return fmt.Sprintf("%s/%02x", indexDir(tenant), shard)
}

func manifestKey(tenant string) string { return indexDir(tenant) + "/manifest" }

var fieldEscaper = strings.NewReplacer("%", "%25", "\t", "%09", "\n", "%0A")

func unescapeField(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	return unescapeFieldSlow(s)
}

func unescapeFieldSlow(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errDamaged
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", errDamaged
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// encodeShard writes one line per entry: a flag (p pending, s settled),
// address, status, source, last sign-in and update time.
func encodeShard(entries []entry) []byte {
	var b bytes.Buffer
	b.WriteString(indexFormat + "\n")
	for _, e := range entries {
		flag := "s"
		if e.pending {
			flag = "p"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%d\t%d\n", flag, fieldEscaper.Replace(e.email),
			fieldEscaper.Replace(string(e.status)), fieldEscaper.Replace(e.source), e.lastSignIn, e.updated)
	}
	return b.Bytes()
}

func decodeShard(data []byte) ([]entry, error) {
	// One string for the shard: every field is a slice of it.
	text := string(data)
	head, rest, ok := strings.Cut(text, "\n")
	if !ok || head != indexFormat {
		return nil, errDamaged
	}
	entries := make([]entry, 0, strings.Count(rest, "\n"))
	var f [6]string
	for len(rest) > 0 {
		var line string
		if line, rest, ok = strings.Cut(rest, "\n"); !ok {
			return nil, errDamaged // cut short
		}
		for i := range f {
			if f[i], line, ok = strings.Cut(line, "\t"); ok != (i < len(f)-1) {
				return nil, errDamaged
			}
		}
		if f[0] != "p" && f[0] != "s" {
			return nil, errDamaged
		}
		e := entry{pending: f[0] == "p"}
		var err error
		var status string
		if e.email, err = unescapeField(f[1]); err != nil {
			return nil, err
		}
		if status, err = unescapeField(f[2]); err != nil {
			return nil, err
		}
		if e.source, err = unescapeField(f[3]); err != nil {
			return nil, err
		}
		e.status = Status(status)
		if e.lastSignIn, err = strconv.ParseInt(f[4], 10, 64); err != nil {
			return nil, errDamaged
		}
		if e.updated, err = strconv.ParseInt(f[5], 10, 64); err != nil {
			return nil, errDamaged
		}
		if n := len(entries); n > 0 && entries[n-1].email >= e.email {
			return nil, errDamaged // out of order
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// manifest says which shards of a tenant's index exist.
type manifest [shardCount / 8]byte

func (m *manifest) has(s byte) bool { return m[s/8]&(1<<(s%8)) != 0 }
func (m *manifest) set(s byte)      { m[s/8] |= 1 << (s % 8) }

func (d *Directory) loadManifest(ctx context.Context, tenant string) (m manifest, ok bool, err error) {
	data, err := d.kv.Load(ctx, manifestKey(tenant))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	head, bits, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if head != indexFormat || hex.DecodedLen(len(bits)) != len(m) {
		return m, false, nil // damaged: rebuilt like a lost one
	}
	if _, err := hex.Decode(m[:], []byte(bits)); err != nil {
		return m, false, nil
	}
	return m, true, nil
}

func (d *Directory) storeManifest(ctx context.Context, tenant string, m manifest) error {
	return d.kv.Store(ctx, manifestKey(tenant), []byte(indexFormat+"\n"+hex.EncodeToString(m[:])+"\n"))
}

// addToManifest records that shard s exists.
func (d *Directory) addToManifest(ctx context.Context, tenant string, s byte) error {
	k := manifestKey(tenant)
	if err := d.kv.Lock(ctx, k); err != nil {
		return err
	}
	defer d.kv.Unlock(context.WithoutCancel(ctx), k) //nolint:errcheck // the lock expires by itself
	m, ok, err := d.loadManifest(ctx, tenant)
	if err != nil || !ok {
		return err // lost meanwhile: the rebuild that follows finds the shard
	}
	if m.has(s) {
		return nil
	}
	m.set(s)
	return d.storeManifest(ctx, tenant, m)
}

// ensureIndex returns the tenant's manifest, rebuilding the index from the
// records if there is none.
func (d *Directory) ensureIndex(ctx context.Context, tenant string) (manifest, error) {
	m, ok, err := d.loadManifest(ctx, tenant)
	if ok || err != nil {
		return m, err
	}
	return d.rebuildIndex(ctx, tenant)
}

// rebuildIndex builds every shard of the tenant's index from the records.
// Record changes wait for it (they need the manifest it writes last).
func (d *Directory) rebuildIndex(ctx context.Context, tenant string) (manifest, error) {
	lock := indexDir(tenant) + "/rebuild"
	if err := d.kv.Lock(ctx, lock); err != nil {
		return manifest{}, err
	}
	defer d.kv.Unlock(context.WithoutCancel(ctx), lock) //nolint:errcheck // the lock expires by itself
	if m, ok, err := d.loadManifest(ctx, tenant); ok || err != nil {
		return m, err // another node just built it
	}
	return d.buildIndex(ctx, tenant)
}

// buildIndex writes every shard of the tenant's index from the records
// (keeping the pending entries of changes under way), then the manifest.
func (d *Directory) buildIndex(ctx context.Context, tenant string) (manifest, error) {
	keys, err := d.recordKeys(ctx, tenant)
	if err != nil {
		return manifest{}, err
	}
	var m manifest
	for shard := range keys {
		m.set(shard)
	}
	err = eachShard(m, func(shard byte) error {
		return d.withShard(ctx, tenant, shard, func() error {
			old, _, _ := d.readShard(ctx, tenant, shard) // a damaged one is replaced whole
			entries, err := d.entriesFromRecords(ctx, keys[shard], old)
			if err != nil {
				return err
			}
			return d.kv.Store(ctx, shardKey(tenant, shard), encodeShard(entries))
		})
	})
	if err != nil {
		return manifest{}, err
	}
	if err := d.registerTenant(ctx, tenant); err != nil {
		return manifest{}, err
	}
	return m, d.storeManifest(ctx, tenant, m)
}

// eachShard runs fn for every shard m names, shardReaders at a time.
func eachShard(m manifest, fn func(shard byte) error) error {
	errs := make([]error, shardCount)
	var wg sync.WaitGroup
	next := make(chan byte)
	for range shardReaders {
		wg.Go(func() {
			for s := range next {
				errs[s] = fn(s)
			}
		})
	}
	for s := range shardCount {
		if m.has(byte(s)) {
			next <- byte(s)
		}
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// recordKeys lists the storage keys of the tenant's records by shard.
func (d *Directory) recordKeys(ctx context.Context, tenant string) (map[byte][]string, error) {
	keys, err := d.recordFiles(ctx, tenant)
	if err != nil {
		return nil, err
	}
	byShard := map[byte][]string{}
	for _, k := range keys {
		name := path.Base(k)
		if len(name) < 2 {
			continue
		}
		b, err := hex.DecodeString(name[:2])
		if err != nil {
			continue
		}
		byShard[b[0]] = append(byShard[b[0]], k)
	}
	return byShard, nil
}

// entriesFromRecords makes a shard's entries from its records, keeping the
// pending entries of old whose change may still be under way.
func (d *Directory) entriesFromRecords(ctx context.Context, keys []string, old []entry) ([]entry, error) {
	byEmail := map[string]entry{}
	for _, k := range keys {
		g, err := d.load(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		byEmail[g.Email] = entryOf(g)
	}
	young := time.Now().Add(-settleAfter).UnixNano()
	for _, e := range old {
		if r, ok := byEmail[e.email]; e.pending && e.updated > young && (!ok || r.updated != e.updated) {
			byEmail[e.email] = e
		}
	}
	entries := make([]entry, 0, len(byEmail))
	for _, e := range byEmail {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.email, b.email) })
	return entries, nil
}

func (d *Directory) withShard(ctx context.Context, tenant string, shard byte, fn func() error) error {
	k := shardKey(tenant, shard)
	if err := d.kv.Lock(ctx, k); err != nil {
		return err
	}
	defer d.kv.Unlock(context.WithoutCancel(ctx), k) //nolint:errcheck // the lock expires by itself
	return fn()
}

// readShard reads one shard: present false if it is missing.
func (d *Directory) readShard(ctx context.Context, tenant string, shard byte) (entries []entry, present bool, err error) {
	data, err := d.kv.Load(ctx, shardKey(tenant, shard))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	entries, err = decodeShard(data)
	return entries, true, err
}

// shardEntries reads a shard the manifest names, rebuilding it from its
// records if it is lost or damaged. Call it holding the shard's lock when
// the result is written back.
func (d *Directory) shardEntries(ctx context.Context, tenant string, shard byte, m manifest) ([]entry, error) {
	if !m.has(shard) {
		return nil, nil
	}
	entries, present, err := d.readShard(ctx, tenant, shard)
	if present && err == nil {
		return entries, nil
	}
	if err != nil && !errors.Is(err, errDamaged) {
		return nil, err
	}
	keys, err := d.recordKeys(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return d.entriesFromRecords(ctx, keys[shard], nil)
}

// index writes g's entry, pending, before its record changes; remove says
// the record is about to go. The caller holds the record's lock.
func (d *Directory) index(ctx context.Context, g Guest, remove bool, now time.Time) error {
	m, err := d.ensureIndex(ctx, g.Tenant)
	if err != nil {
		return err
	}
	shard := shardOf(g.Email)
	err = d.withShard(ctx, g.Tenant, shard, func() error {
		entries, err := d.shardEntries(ctx, g.Tenant, shard, m)
		if err != nil {
			return err
		}
		entries = d.settle(ctx, g.Tenant, entries)
		e := entryOf(g)
		e.pending = true
		i, found := slices.BinarySearchFunc(entries, g.Email, func(e entry, email string) int { return strings.Compare(e.email, email) })
		switch {
		case found && remove:
			// An update time no record has keeps the entry pending until
			// settleAfter, when the record's absence (or presence, if
			// the delete failed) decides.
			entries[i].pending, entries[i].updated = true, now.UnixNano()
		case found:
			entries[i] = e
		case !remove:
			entries = slices.Insert(entries, i, e)
		}
		return d.kv.Store(ctx, shardKey(g.Tenant, shard), encodeShard(entries))
	})
	if err != nil || m.has(shard) {
		return err
	}
	return d.addToManifest(ctx, g.Tenant, shard)
}

// settle clears the pending entries whose change is done (their record
// shows it) and, once settleAfter has passed, takes the record as it is.
func (d *Directory) settle(ctx context.Context, tenant string, entries []entry) []entry {
	old := time.Now().Add(-settleAfter).UnixNano()
	n := 0
	for _, e := range entries {
		if e.pending {
			g, err := d.load(ctx, key(tenant, e.email))
			switch {
			case err == nil && e.shows(g):
				e.pending = false
			case e.updated < old && errors.Is(err, ErrNotFound):
				continue // removed
			case e.updated < old && err == nil:
				e = entryOf(g)
			}
		}
		entries[n] = e
		n++
	}
	return entries[:n]
}

// readIndex reads every shard of the tenant's index at once.
func (d *Directory) readIndex(ctx context.Context, tenant string) ([][]entry, error) {
	m, err := d.ensureIndex(ctx, tenant)
	if err != nil {
		return nil, err
	}
	shards := make([][]entry, shardCount)
	err = eachShard(m, func(s byte) (err error) {
		shards[s], err = d.shardEntries(ctx, tenant, s, m)
		return err
	})
	return shards, err
}
