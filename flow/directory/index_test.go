package directory

import (
	"context"
	"errors"
	"fmt"
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
)

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
	for _, q := range []Query{
		{}, {Status: Invited}, {Status: Redeemed}, {Status: Revoked},
		{Source: SourceOTP}, {Source: SourcePasskey}, {Source: "oidc"},
		{Search: "@FABRIKAM.com"}, {Search: "g1", Status: Redeemed},
		{SignedInAfter: &hour}, {SignedInBefore: &hour},
	} {
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
		if !slices.Equal(got, want) {
			t.Errorf("query %+v:\n got  %q\n want %q", q, got, want)
		}
	}
}

// Two nodes (directories with their own caches on one storage) change the
// same guests at once; every query then answers what the records say.
func TestIndexTwoNodesChangingOneGuest(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
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
	checkQueries(t, nodes[0], "acme")
	checkQueries(t, nodes[1], "acme")
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
		checkQueries(t, New(&certmagic.FileStorage{Path: dir}, 100, time.Second), "acme")
		// The killed process's locks go stale before the next round
		// could change the guests it held.
		removeLocks(t, dir)
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
}

var errCrash = errors.New("the process died")

func (c *crashingKV) Store(ctx context.Context, key string, value []byte) error {
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
	if c.armed.Load() && strings.HasPrefix(key, prefix+"/") {
		c.dead.Store(true)
	}
	return c.dead.Load()
}

// A change that dies between its index entry and its record (creating,
// changing and removing a guest) leaves queries answering what the
// records say, on a node that starts afresh.
func TestIndexAfterACrashMidChange(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
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
	checkQueries(t, d, "acme")
}

// sameShard returns another address whose entry shares email's shard.
func sameShard(email string) string {
	for i := 0; ; i++ {
		if other := fmt.Sprintf("neighbour%d@contoso.com", i); shardOf(other) == shardOf(email) {
			return other
		}
	}
}

// A lost index, a lost shard and a damaged one are rebuilt from the
// records.
func TestIndexRebuiltWhenLostOrDamaged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storage := &certmagic.FileStorage{Path: dir}
	d := New(storage, 100, time.Second)
	for i, email := range hammerEmails {
		if _, err := d.RecordSignIn(ctx, "acme", email, []string{SourceOTP, SourcePasskey}[i%2], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Revoke(ctx, "acme", hammerEmails[3], time.Now()); err != nil {
		t.Fatal(err)
	}
	shard := shardKey("acme", shardOf(hammerEmails[3]))
	for name, spoil := range map[string]func() error{
		"index lost":        func() error { return os.RemoveAll(dir + "/" + indexDir("acme")) },
		"manifest damaged":  func() error { return storage.Store(ctx, manifestKey("acme"), []byte("garbage")) },
		"shard lost":        func() error { return storage.Delete(ctx, shard) },
		"shard damaged":     func() error { return storage.Store(ctx, shard, []byte(indexFormat+"\ns\tz@x\tredeemed\n")) },
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
			checkQueries(t, d, "acme")
		})
	}
	// Records from before the index existed are found.
	if err := os.RemoveAll(dir + "/" + indexPrefix); err != nil {
		t.Fatal(err)
	}
	checkQueries(t, d, "acme")
}

// countingKV counts the values read.
type countingKV struct {
	KV
	loads atomic.Int64
}

func (c *countingKV) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.KV.Load(ctx, key)
}

// A page reads the manifest, the shards and its own records, not every
// record.
func TestFindReadsThePageNotEveryRecord(t *testing.T) {
	ctx := context.Background()
	kv := &countingKV{KV: &certmagic.FileStorage{Path: t.TempDir()}}
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
	if n := kv.loads.Load(); n > 1+shardCount+21 {
		t.Errorf("a page of 20 read %d values", n)
	}
}
