package directory

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A returning guest's sign-in changes only their last sign-in. Its index
// entry is brought up to date in the background, within flushEvery, so
// such a sign-in writes what it wrote before there was an index: the
// record alone. Lists filtered by last sign-in may lag that long.
//
// A process that holds such updates keeps a marker in the storage
// (writersDir/<id>), refreshed every beatEvery while it lives and removed
// when it closes. A marker older than staleAfter belongs to a process that
// died with updates unwritten: any node that sees it refreshes the index
// of every tenant from the records (RepairAbandoned), then removes it.

const (
	flushEvery = time.Second
	beatEvery  = 30 * time.Second
	staleAfter = 2 * time.Minute

	writersDir  = "email_otp/guest_index_writers"
	tenantsKey  = "email_otp/guest_index_tenants"
	repairLock  = "email_otp/guest_index_repair"
	tenantsLock = tenantsKey
)

// lateIndex is a directory's queue of last sign-ins to write to the index.
type lateIndex struct {
	d  *Directory
	id string // this process's marker

	mu      sync.Mutex
	queue   map[string]map[string]bool // tenant → addresses
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

func newLateIndex(d *Directory) *lateIndex {
	return &lateIndex{d: d, id: randomID(), queue: map[string]map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
}

func randomID() string { return strings.ToLower(rand.Text()) }

// start makes sure this process's marker is in the storage and its
// flushes run: after it returns, a crash leaves a trace.
func (l *lateIndex) start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return nil
	}
	if l.closed {
		return errors.New("the guest directory is closed")
	}
	if err := l.beat(ctx); err != nil {
		return err
	}
	l.started = true
	go l.run()
	return nil
}

// add queues email's entry in tenant; start has been called.
func (l *lateIndex) add(tenant, email string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.queue[tenant] == nil {
		l.queue[tenant] = map[string]bool{}
	}
	l.queue[tenant][email] = true
}

func (l *lateIndex) beat(ctx context.Context) error {
	return l.d.kv.Store(ctx, writersDir+"/"+l.id, []byte(strconv.FormatInt(time.Now().Unix(), 10)))
}

func (l *lateIndex) run() {
	defer close(l.done)
	flush, beat := time.NewTicker(flushEvery), time.NewTicker(beatEvery)
	defer flush.Stop()
	defer beat.Stop()
	ctx := context.Background()
	for {
		select {
		case <-l.stop:
			// Bounded: Caddy closes the directory while it loads a new
			// config, which must not wait on a storage that is gone. What
			// is not written keeps the marker, and another node repairs.
			last, cancel := context.WithTimeout(ctx, closeWait)
			l.flush(last)
			cancel()
			return
		case <-flush.C:
			l.flush(ctx)
		case <-beat.C:
			_ = l.beat(ctx) // a missed beat is made up at the next; staleAfter spans several
			_ = l.d.RepairAbandoned(ctx, time.Now().Add(-staleAfter))
		}
	}
}

// flush writes the queued last sign-ins, one shard write per shard.
func (l *lateIndex) flush(ctx context.Context) {
	l.mu.Lock()
	queue := l.queue
	l.queue = map[string]map[string]bool{}
	l.mu.Unlock()
	for tenant, emails := range queue {
		byShard := map[byte][]string{}
		for email := range emails {
			byShard[shardOf(email)] = append(byShard[shardOf(email)], email)
		}
		m, err := l.d.ensureIndex(ctx, tenant)
		if err != nil {
			for _, emails := range byShard {
				l.requeue(tenant, emails)
			}
			continue
		}
		for shard, emails := range byShard {
			if err := l.d.refreshEntries(ctx, tenant, shard, m, emails); err != nil {
				l.requeue(tenant, emails)
			}
		}
	}
}

// requeue puts back what a flush could not write (the storage failed):
// the next flush tries again.
func (l *lateIndex) requeue(tenant string, emails []string) {
	for _, email := range emails {
		l.add(tenant, email)
	}
}

// close writes what is queued and removes the marker: nothing is owed.
func (l *lateIndex) close(ctx context.Context) error {
	l.mu.Lock()
	started := l.started && !l.closed
	l.closed = true
	l.mu.Unlock()
	if !started {
		return nil
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	owed := len(l.queue) > 0
	l.mu.Unlock()
	if owed {
		return errors.New("the guest index's last sign-ins could not all be written: another node repairs them once this one's marker is stale")
	}
	ctx, cancel := context.WithTimeout(ctx, closeWait)
	defer cancel()
	return l.d.kv.Delete(ctx, writersDir+"/"+l.id)
}

// closeWait bounds what closing writes.
const closeWait = 5 * time.Second

// refreshEntries sets the settled entries of emails from their records.
// Pending ones are left: a change may be under way, and settle decides.
func (d *Directory) refreshEntries(ctx context.Context, tenant string, shard byte, m manifest, emails []string) error {
	return d.withShard(ctx, tenant, shard, func() error {
		entries, err := d.shardEntries(ctx, tenant, shard, m)
		if err != nil {
			return err
		}
		for _, email := range emails {
			i, found := slices.BinarySearchFunc(entries, email, func(e entry, email string) int { return strings.Compare(e.email, email) })
			if !found || entries[i].pending {
				continue
			}
			g, err := d.load(ctx, key(tenant, email))
			if err != nil {
				continue // gone: its removal wrote the entry
			}
			entries[i] = entryOf(g)
		}
		return d.kv.Store(ctx, shardKey(tenant, shard), encodeShard(entries))
	})
}

// RepairAbandoned refreshes every tenant's index from the records if some
// process's marker is older than staleBefore (the process died with last
// sign-ins unwritten), and removes those markers.
func (d *Directory) RepairAbandoned(ctx context.Context, staleBefore time.Time) error {
	stale, err := d.staleWriters(ctx, staleBefore)
	if err != nil || len(stale) == 0 {
		return err
	}
	if err := d.kv.Lock(ctx, repairLock); err != nil {
		return err
	}
	defer d.kv.Unlock(context.WithoutCancel(ctx), repairLock) //nolint:errcheck // the lock expires by itself
	if stale, err = d.staleWriters(ctx, staleBefore); err != nil || len(stale) == 0 {
		return err // another node repaired meanwhile
	}
	tenants, err := d.indexedTenants(ctx)
	if err != nil {
		return err
	}
	for _, tenant := range tenants {
		if _, err := d.buildIndex(ctx, tenant); err != nil {
			return err
		}
	}
	for _, k := range stale {
		if err := d.kv.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func (d *Directory) staleWriters(ctx context.Context, staleBefore time.Time) ([]string, error) {
	keys, err := d.kv.List(ctx, writersDir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, k := range keys {
		data, err := d.kv.Load(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, err
		}
		beat, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil || time.Unix(beat, 0).Before(staleBefore) {
			stale = append(stale, k)
		}
	}
	return stale, nil
}

// indexedTenants lists the tenants that have an index.
func (d *Directory) indexedTenants(ctx context.Context) ([]string, error) {
	data, err := d.kv.Load(ctx, tenantsKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data)), nil
}

// registerTenant adds tenant to the list of indexed tenants.
func (d *Directory) registerTenant(ctx context.Context, tenant string) error {
	if err := d.kv.Lock(ctx, tenantsLock); err != nil {
		return err
	}
	defer d.kv.Unlock(context.WithoutCancel(ctx), tenantsLock) //nolint:errcheck // the lock expires by itself
	tenants, err := d.indexedTenants(ctx)
	if err != nil || slices.Contains(tenants, tenant) {
		return err
	}
	tenants = append(tenants, tenant)
	return d.kv.Store(ctx, tenantsKey, []byte(strings.Join(tenants, "\n")+"\n"))
}
