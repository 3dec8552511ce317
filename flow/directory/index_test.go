package directory_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/redis/go-redis/v9"

	. "github.com/otpgate/caddy-email-otp/flow/directory"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// storages runs test on Caddy's file storage and on the Redis store's.
func storages(t *testing.T, test func(t *testing.T, kv KV)) {
	t.Run("file_system", func(t *testing.T) { test(t, &certmagic.FileStorage{Path: t.TempDir()}) })
	t.Run("redis", func(t *testing.T) { test(t, redisGuestStorage(t)) })
}

// redisGuestStorage starts a Redis server and returns the store's guest
// storage on it.
func redisGuestStorage(tb testing.TB) KV {
	srv := redisserver.Start(tb)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	tb.Cleanup(func() { rdb.Close() })
	return redisstore.New(rdb, redisstore.Options{}).GuestStorage()
}

// deleteAll removes every key under dir.
func deleteAll(ctx context.Context, kv KV, dir string) error {
	keys, err := kv.List(ctx, dir, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for _, k := range keys {
		if err := kv.Delete(ctx, k); err != nil {
			return err
		}
	}
	return err
}

// TestMain lets a test run this binary as a process that changes guests
// until it is killed (see TestIndexSurvivesAKilledProcess).
func TestMain(m *testing.M) {
	if dir := os.Getenv("DIRECTORY_HAMMER_STORAGE"); dir != "" {
		hammer(New(&certmagic.FileStorage{Path: dir}, 100, time.Second), rand.New(rand.NewPCG(uint64(os.Getpid()), 1)))
		return
	}
	os.Exit(m.Run())
}

var hammerEmails = func() []string {
	var emails []string
	for i := range 60 {
		emails = append(emails, fmt.Sprintf("g%02d@%s", i, []string{"contoso.com", "fabrikam.com", "globex.example"}[i%3]))
	}
	return emails
}()

// hammer changes random guests of tenant acme forever, the way sign-ins and
// operators do.
func hammer(d *Directory, rng *rand.Rand) {
	ctx := context.Background()
	for {
		changeOneGuest(ctx, d, rng)
	}
}

func changeOneGuest(ctx context.Context, d *Directory, rng *rand.Rand) {
	email := hammerEmails[rng.IntN(len(hammerEmails))]
	now := time.Now()
	var err error
	switch rng.IntN(5) {
	case 0:
		_, _, _, err = d.Invite(ctx, "acme", email, Invitation{InvitedBy: "ops@acme.example"}, now)
	case 1:
		_, err = d.RecordSignIn(ctx, "acme", email, []string{SourceOTP, SourcePasskey, "oidc:fabrikam"}[rng.IntN(3)], now)
	case 2:
		_, err = d.Revoke(ctx, "acme", email, now)
	case 3:
		_, err = d.Reset(ctx, "acme", email, now)
	case 4:
		_, err = d.Delete(ctx, "acme", email, now)
	}
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRevoked) {
		panic(err)
	}
}

// checkQueries compares Find with every record read one by one, for the
// queries an operator asks, page by page.
func checkQueries(t *testing.T, d *Directory, tenant string) {
	t.Helper()
	ctx := context.Background()
	all, err := d.List(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(-time.Hour)
	queries := []Query{
		{}, {Status: Invited}, {Status: Redeemed}, {Status: Revoked},
		{Source: SourceOTP}, {Source: SourcePasskey}, {Source: "oidc"},
		{Search: "@FABRIKAM.com"}, {Search: "g1", Status: Redeemed},
		{SignedInAfter: &hour}, {SignedInBefore: &hour},
	}
	// Bounds between the records' own last sign-ins, down to the last one:
	// an index a sign-in never reached answers these wrong.
	var signIns []time.Time
	for _, g := range all {
		if g.LastSignIn != nil {
			signIns = append(signIns, *g.LastSignIn)
		}
	}
	slices.SortFunc(signIns, time.Time.Compare)
	for _, i := range []int{len(signIns) / 2, len(signIns) * 9 / 10, len(signIns) - 1} {
		if i >= 0 && i < len(signIns) {
			at := signIns[i]
			justBefore := at.Add(-time.Nanosecond)
			queries = append(queries, Query{SignedInAfter: &justBefore}, Query{SignedInBefore: &at})
		}
	}
	// Each again by last sign-in, newest first.
	for _, q := range slices.Clone(queries) {
		q.Sort = SortLastSignIn
		queries = append(queries, q)
	}
	for _, q := range queries {
		var want, got []string
		for _, g := range all {
			if q.Matches(g) {
				want = append(want, fmt.Sprintf("%s %s %s", g.Email, g.Status, g.Source))
			}
		}
		q.Limit = 7
		for {
			page, err := d.Find(ctx, tenant, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			for _, g := range page.Guests {
				got = append(got, fmt.Sprintf("%s %s %s", g.Email, g.Status, g.Source))
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
		if q.Sort == SortLastSignIn {
			// The order is the index's, which may trail a record by a
			// cache's lifetime (TestFindByLastSignIn holds it to the
			// records); the pages hold each guest once.
			got, want = sorted(got), sorted(want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("query %+v:\n got  %q\n want %q", q, got, want)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// By last sign-in, newest first, then never signed in, in address order;
// a page starts where the one before stopped, and a guest who signs in
// between two pages moves to the top.
func TestFindByLastSignIn(t *testing.T) { storages(t, testFindByLastSignIn) }

func testFindByLastSignIn(t *testing.T, storage KV) {
	ctx := context.Background()
	d := New(storage, 100, time.Second)
	defer d.Close()
	start := time.Now().Add(-time.Hour)
	var want []string
	for i, email := range hammerEmails[:23] {
		if i%4 == 3 { // never signed in
			if _, _, _, err := d.Invite(ctx, "acme", email, Invitation{}, start); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Some share a moment: then the address decides.
		if _, err := d.RecordSignIn(ctx, "acme", email, SourceOTP, start.Add(time.Duration(i/2)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	d.FlushLate()
	all, err := d.List(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, func(a, b Guest) int {
		if c := cmp.Compare(lastOrZero(b), lastOrZero(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Email, b.Email)
	})
	for _, g := range all {
		want = append(want, g.Email)
	}
	var got []string
	q := Query{Sort: SortLastSignIn, Limit: 4}
	for {
		page, err := d.Find(ctx, "acme", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.Guests {
			got = append(got, g.Email)
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
		if len(got) == 8 {
			// The first guest of the list signs in again: it was shown, and
			// the pages after this one don't show it twice.
			if _, err := d.RecordSignIn(ctx, "acme", want[0], SourceOTP, time.Now()); err != nil {
				t.Fatal(err)
			}
			d.FlushLate()
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("by last sign-in:\n got  %q\n want %q", got, want)
	}
	if _, err := d.Find(ctx, "acme", Query{Sort: SortLastSignIn, After: "soon"}); err == nil {
		t.Error("a cursor that is no cursor was taken")
	}
	if _, err := d.Find(ctx, "acme", Query{Sort: "name"}); err == nil {
		t.Error("an unknown order was taken")
	}
}

// lastOrZero orders a guest who never signed in after every other.
func lastOrZero(g Guest) int64 {
	if g.LastSignIn == nil {
		return 0
	}
	return g.LastSignIn.UnixNano()
}

// Two nodes (directories with their own caches on one storage) change the
// same guests at once; every query then answers what the records say.
func TestIndexTwoNodesChangingOneGuest(t *testing.T) { storages(t, testTwoNodes) }

func testTwoNodes(t *testing.T, storage KV) {
	nodes := []*Directory{New(storage, 100, time.Second), New(storage, 100, time.Second)}
	var wg sync.WaitGroup
	for i, d := range nodes {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for range 150 {
				changeOneGuest(context.Background(), d, rng)
			}
		})
	}
	wg.Wait()
	for _, d := range nodes {
		if err := d.Close(); err != nil { // the last sign-ins are written
			t.Fatal(err)
		}
	}
	// Each node's cache may hold the other's changes back for its lifetime
	// (a second); then both answer what the records say.
	time.Sleep(1100 * time.Millisecond)
	checkQueries(t, nodes[0], "acme")
	checkQueries(t, nodes[1], "acme")
}

// A returning guest's sign-in writes their record alone; the index learns
// the new last sign-in within a second, and at once when the directory
// closes.
func TestReturningSignInWritesTheRecordAlone(t *testing.T) { storages(t, testReturningSignIn) }

func testReturningSignIn(t *testing.T, storage KV) {
	ctx := context.Background()
	kv := &countingKV{KV: storage}
	d := New(kv, 100, time.Second)
	day := time.Now().Add(-24 * time.Hour)
	for _, email := range hammerEmails[:5] {
		if _, err := d.RecordSignIn(ctx, "acme", email, SourceOTP, day); err != nil {
			t.Fatal(err)
		}
	}
	kv.stores.Store(0)
	if _, err := d.RecordSignIn(ctx, "acme", hammerEmails[2], SourceOTP, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := kv.stores.Load(); n != 2 { // this process's marker, the first time, and the record
		t.Errorf("a returning sign-in wrote %d values, want the marker and the record", n)
	}
	kv.stores.Store(0)
	if _, err := d.RecordSignIn(ctx, "acme", hammerEmails[3], SourceOTP, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := kv.stores.Load(); n != 1 {
		t.Errorf("the next returning sign-in wrote %d values, want the record alone", n)
	}
	hour := time.Now().Add(-time.Hour)
	deadline := time.Now().Add(3 * FlushEvery)
	for {
		page, err := d.Find(ctx, "acme", Query{SignedInAfter: &hour})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Guests) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signed in within the hour, %s later: %d guests, want 2", 3*FlushEvery, len(page.Guests))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if keys, err := storage.List(ctx, WritersDir, false); err == nil && len(keys) > 0 {
		t.Errorf("a closed directory left its marker: %v", keys)
	}
	checkQueries(t, New(storage, 100, time.Second), "acme")
}

// A process killed while it changes guests leaves records and index that
// still agree for every query.
func TestIndexSurvivesAKilledProcess(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "DIRECTORY_HAMMER_STORAGE="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+100*round) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// The killed process's locks go stale before anyone could change
		// the guests it held (a lock file cut short by the kill never
		// does, for certmagic: that is an operator's to remove).
		removeLocks(t, dir)
		// The killed process owed last sign-ins to the index; its marker
		// says so to the next node, which repairs once the marker is
		// stale (here: at once).
		d := New(&certmagic.FileStorage{Path: dir}, 100, time.Second)
		if err := d.RepairAbandoned(context.Background(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if keys, _ := d.KV().List(context.Background(), WritersDir, false); len(keys) > 0 {
			t.Errorf("the repair left the markers %v", keys)
		}
		checkQueries(t, d, "acme")
	}
}

// removeLocks stands in for the wait until a killed process's lock files
// are stale (10 s).
func removeLocks(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir + "/locks"); err != nil {
		t.Fatal(err)
	}
}

// crashingKV dies (fails every write) from the moment a guest record is
// about to be written: the index has its entry, the record does not.
type crashingKV struct {
	KV
	armed, dead atomic.Bool
	// afterRecord: the record's write succeeds, and the process dies
	// right after it.
	afterRecord bool
}

var errCrash = errors.New("the process died")

func (c *crashingKV) Store(ctx context.Context, key string, value []byte) error {
	if c.afterRecord && !c.dead.Load() && c.dying(key) {
		return c.KV.Store(ctx, key, value)
	}
	if c.dying(key) {
		return errCrash
	}
	return c.KV.Store(ctx, key, value)
}

func (c *crashingKV) Delete(ctx context.Context, key string) error {
	if c.dying(key) {
		return errCrash
	}
	return c.KV.Delete(ctx, key)
}

func (c *crashingKV) dying(key string) bool {
	if c.armed.Load() && strings.HasPrefix(key, RecordPrefix+"/") {
		c.dead.Store(true)
	}
	return c.dead.Load()
}

// A change that dies between its index entry and its record (creating,
// changing and removing a guest) leaves queries answering what the
// records say, on a node that starts afresh.
func TestIndexAfterACrashMidChange(t *testing.T) { storages(t, testCrashMidChange) }

func testCrashMidChange(t *testing.T, storage KV) {
	ctx := context.Background()
	d := New(storage, 100, time.Second)
	now := time.Now()
	for _, email := range []string{"kept@contoso.com", "revoked@contoso.com", "deleted@contoso.com"} {
		if _, err := d.RecordSignIn(ctx, "acme", email, SourceOTP, now); err != nil {
			t.Fatal(err)
		}
	}
	for name, change := range map[string]func(d *Directory) error{
		"create": func(d *Directory) error {
			_, _, _, err := d.Invite(ctx, "acme", "new@contoso.com", Invitation{}, now)
			return err
		},
		"revoke": func(d *Directory) error { _, err := d.Revoke(ctx, "acme", "revoked@contoso.com", now); return err },
		"delete": func(d *Directory) error { _, err := d.Delete(ctx, "acme", "deleted@contoso.com", now); return err },
	} {
		t.Run(name, func(t *testing.T) {
			kv := &crashingKV{KV: storage}
			kv.armed.Store(true)
			if err := change(New(kv, 100, time.Second)); !errors.Is(err, errCrash) {
				t.Fatalf("the change did not die where it should: %v", err)
			}
			checkQueries(t, New(storage, 100, time.Second), "acme")
		})
	}
	// The next change in each of those shards settles what the crash left.
	for _, email := range []string{"new@contoso.com", "revoked@contoso.com", "deleted@contoso.com"} {
		if _, err := d.RecordSignIn(ctx, "acme", sameShard(email), SourceOTP, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	d.FlushLate()
	checkQueries(t, d, "acme")

	// A returning guest's sign-in is written, then the process dies before
	// its index entry is: the marker it left makes the next node repair.
	// (Its entry is settled first: a new guest in its shard settles it.)
	for _, email := range []string{"returning@contoso.com", sameShard("returning@contoso.com")} {
		if _, err := d.RecordSignIn(ctx, "acme", email, SourceOTP, now); err != nil {
			t.Fatal(err)
		}
	}
	kv := &crashingKV{KV: storage, afterRecord: true}
	kv.armed.Store(true)
	if _, err := New(kv, 100, time.Second).RecordSignIn(ctx, "acme", "returning@contoso.com", SourceOTP, time.Now()); err != nil {
		t.Fatalf("the sign-in: %v", err)
	}
	next := New(storage, 100, time.Second)
	if err := next.RepairAbandoned(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkQueries(t, next, "acme")
}

// sameShard returns another address whose entry shares email's shard.
func sameShard(email string) string {
	for i := len(email); ; i++ {
		if other := fmt.Sprintf("neighbour%d@contoso.com", i); ShardOf(other) == ShardOf(email) {
			return other
		}
	}
}

// A lost index, a lost shard and a damaged one are rebuilt from the
// records.
func TestIndexRebuiltWhenLostOrDamaged(t *testing.T) { storages(t, testRebuilt) }

func testRebuilt(t *testing.T, storage KV) {
	ctx := context.Background()
	d := New(storage, 100, time.Second)
	for i, email := range hammerEmails {
		if _, err := d.RecordSignIn(ctx, "acme", email, []string{SourceOTP, SourcePasskey}[i%2], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Revoke(ctx, "acme", hammerEmails[3], time.Now()); err != nil {
		t.Fatal(err)
	}
	shard := ShardKey("acme", ShardOf(hammerEmails[3]))
	for name, spoil := range map[string]func() error{
		"index lost":        func() error { return deleteAll(ctx, storage, IndexDir("acme")) },
		"manifest damaged":  func() error { return storage.Store(ctx, ManifestKey("acme"), []byte("garbage")) },
		"shard lost":        func() error { return storage.Delete(ctx, shard) },
		"shard damaged":     func() error { return storage.Store(ctx, shard, []byte(IndexFormat+"\ns\tz@x\tredeemed\n")) },
		"shard out of date": func() error { return storage.Store(ctx, shard, []byte("email-otp guest index 0\n")) },
	} {
		t.Run(name, func(t *testing.T) {
			if err := spoil(); err != nil {
				t.Fatal(err)
			}
			checkQueries(t, New(storage, 100, time.Second), "acme")
			// and the next change writes a whole shard again
			if _, err := d.RecordSignIn(ctx, "acme", hammerEmails[4], SourceOTP, time.Now()); err != nil {
				t.Fatal(err)
			}
			d.FlushLate()
			checkQueries(t, d, "acme")
		})
	}
	// Records from before the index existed are found.
	if err := deleteAll(ctx, storage, IndexPrefix); err != nil {
		t.Fatal(err)
	}
	checkQueries(t, d, "acme")
}

// countingKV counts the values read and written.
type countingKV struct {
	KV
	loads, stores atomic.Int64
}

func (c *countingKV) Store(ctx context.Context, key string, value []byte) error {
	c.stores.Add(1)
	return c.KV.Store(ctx, key, value)
}

func (c *countingKV) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.KV.Load(ctx, key)
}

// A page reads the manifest, the shards and its own records, not every
// record.
func TestFindReadsThePageNotEveryRecord(t *testing.T) { storages(t, testReadsThePage) }

func testReadsThePage(t *testing.T, storage KV) {
	ctx := context.Background()
	kv := &countingKV{KV: storage}
	d := New(kv, 100, time.Second)
	for i := range 1000 {
		if _, _, _, err := d.Invite(ctx, "acme", fmt.Sprintf("guest%04d@contoso.com", i), Invitation{}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	kv.loads.Store(0)
	page, err := d.Find(ctx, "acme", Query{Search: "guest09", Limit: 20})
	if err != nil || len(page.Guests) != 20 || page.Guests[0].Email != "guest0900@contoso.com" || page.Next != "guest0919@contoso.com" {
		t.Fatalf("page: %d guests, next %q, %v", len(page.Guests), page.Next, err)
	}
	if n := kv.loads.Load(); n > 1+ShardCount+21 {
		t.Errorf("a page of 20 read %d values", n)
	}
}

// Closing with the storage gone (Redis stopped) gives up within its bound
// and says so; the marker it could not remove makes another node repair.
func TestCloseDoesNotWaitOnAStorageThatIsGone(t *testing.T) {
	srv := redisserver.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 10, DialTimeout: time.Minute})
	defer rdb.Close()
	d := New(redisstore.New(rdb, redisstore.Options{}).GuestStorage(), 100, time.Second)
	ctx := context.Background()
	if _, err := d.RecordSignIn(ctx, "acme", "ann@contoso.com", SourceOTP, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RecordSignIn(ctx, "acme", "ann@contoso.com", SourceOTP, time.Now()); err != nil { // queued for the index
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	if err := d.Close(); err == nil {
		t.Error("closing with the storage gone reported no error")
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("Close took %v with the storage gone", took)
	}
}
