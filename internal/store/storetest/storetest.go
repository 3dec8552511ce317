// Package storetest is the contract every flow.Store must keep, as tests any
// store implementation runs against itself.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Run runs the contract against stores made by newStore (a fresh, empty one
// per call).
func Run(t *testing.T, newStore func(t *testing.T) flow.Store) {
	for name, test := range map[string]func(*testing.T, flow.Store){
		"SaveLoad":               saveLoad,
		"NewChallengeSupersedes": supersedes,
		"BrowsersAreIndependent": browsersAreIndependent,
		"TwoPartIDsRefused":      twoPartIDsRefused,
		"Cancel":                 cancelOne,
		"MatchConsumes":          matchConsumes,
		"WrongTriesExhaust":      wrongTriesExhaust,
		"Expiry":                 expiry,
		"ParallelMatchOnce":      parallelMatchOnce,
		"ParallelMissesCounted":  parallelMissesCounted,
		"Delivery":               delivery,
		"Revocation":             revocation,
		"UnknownIDs":             unknownIDs,
		"Counters":               counters,
		"PeekDoesNotCount":       peekDoesNotCount,
		"ParallelCounts":         parallelCounts,
		"Flags":                  flags,
		"CeremonyTakenOnce":      ceremonyTakenOnce,
		"CeremonyExpires":        ceremonyExpires,
	} {
		t.Run(name, func(t *testing.T) { test(t, newStore(t)) })
	}
}

var ctx = context.Background()

// eventually polls cond until it holds, failing after a deadline. Stores let
// go of an expired record on their own clock (Redis expires keys, the memory
// store's caches drop entries), so the contract waits for that to be
// observed rather than sleeping for a guessed while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func challenge(tenant, email string, now time.Time) flow.Challenge {
	return challengeFrom("0123456789abcdef", tenant, email, now)
}

// challengeFrom is a challenge asked for from the browser of slot (16 hex digits).
func challengeFrom(slot, tenant, email string, now time.Time) flow.Challenge {
	return flow.Challenge{
		ID:          flow.IdentityTag(tenant, email) + "." + slot + "." + flow.RandomToken(),
		Tenant:      tenant,
		Email:       email,
		CodeHash:    []byte("right-hash-" + email),
		Resource:    "/doc",
		CreatedAt:   now,
		ExpiresAt:   now.Add(time.Minute),
		MaxAttempts: 3,
	}
}

func save(t *testing.T, s flow.Store, c flow.Challenge) {
	t.Helper()
	if err := s.SaveChallenge(ctx, c); err != nil {
		t.Fatalf("SaveChallenge: %v", err)
	}
}

func saveLoad(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	c.Scope = flow.IdentityTag("acme", "a@b.co") + ":device"
	save(t, s, c)
	got, err := s.LoadChallenge(ctx, c.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Tenant != c.Tenant || got.Email != c.Email || string(got.CodeHash) != string(c.CodeHash) ||
		got.Resource != c.Resource || !got.ExpiresAt.Equal(c.ExpiresAt.Truncate(time.Millisecond)) && !got.ExpiresAt.Equal(c.ExpiresAt) ||
		got.MaxAttempts != 3 || got.Attempts != 0 || got.Delivery != flow.DeliveryQueued || got.Scope != c.Scope {
		t.Fatalf("loaded %+v\nsaved  %+v", got, c)
	}
}

func supersedes(t *testing.T, s flow.Store) {
	now := time.Now()
	old, fresh, other := challenge("acme", "a@b.co", now), challenge("acme", "a@b.co", now), challenge("globex", "a@b.co", now)
	save(t, s, old)
	save(t, s, other)
	save(t, s, fresh)
	if _, err := s.LoadChallenge(ctx, old.ID, now); err != flow.ErrChallengeNotFound {
		t.Errorf("superseded challenge: %v", err)
	}
	if r, _, _ := s.AttemptChallenge(ctx, old.ID, old.CodeHash, now); r != flow.AttemptGone {
		t.Errorf("superseded challenge matched: %v", r)
	}
	for _, c := range []flow.Challenge{fresh, other} {
		if _, err := s.LoadChallenge(ctx, c.ID, now); err != nil {
			t.Errorf("%s/%s: %v", c.Tenant, c.ID, err)
		}
	}
}

// browsersAreIndependent: a browser's new challenge leaves another browser's
// challenge for the same identity alone.
func browsersAreIndependent(t *testing.T, s flow.Store) {
	now := time.Now()
	owner := challengeFrom("aaaaaaaaaaaaaaaa", "acme", "a@b.co", now)
	stranger := challengeFrom("bbbbbbbbbbbbbbbb", "acme", "a@b.co", now)
	save(t, s, owner)
	save(t, s, stranger)
	save(t, s, challengeFrom("bbbbbbbbbbbbbbbb", "acme", "a@b.co", now))
	if r, _, err := s.AttemptChallenge(ctx, owner.ID, owner.CodeHash, now); err != nil || r != flow.AttemptMatched {
		t.Fatalf("the owner's challenge after a stranger's: %v %v", r, err)
	}
	if _, err := s.LoadChallenge(ctx, stranger.ID, now); err != flow.ErrChallengeNotFound {
		t.Errorf("the stranger's first challenge outlived the stranger's second: %v", err)
	}
}

// twoPartIDsRefused: an id without a browser slot names no challenge a
// store keeps, so it is never saved.
func twoPartIDsRefused(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	c.ID = flow.IdentityTag("acme", "a@b.co") + "." + flow.RandomToken()
	if err := s.SaveChallenge(ctx, c); err == nil {
		t.Fatal("a two-part challenge id was saved")
	}
	if _, err := s.LoadChallenge(ctx, c.ID, now); err != flow.ErrChallengeNotFound {
		t.Fatalf("a two-part challenge id loads: %v", err)
	}
}

// cancelOne: CancelChallenge removes that challenge and nothing else.
func cancelOne(t *testing.T, s flow.Store) {
	now := time.Now()
	first := challenge("acme", "a@b.co", now)
	save(t, s, first)
	second := challenge("acme", "a@b.co", now)
	save(t, s, second)
	if err := s.CancelChallenge(ctx, first.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadChallenge(ctx, second.ID, now); err != nil {
		t.Fatalf("cancelling a superseded id removed the newer challenge: %v", err)
	}
	if err := s.CancelChallenge(ctx, second.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadChallenge(ctx, second.ID, now); err != flow.ErrChallengeNotFound {
		t.Fatalf("cancelled challenge: %v", err)
	}
	if err := s.CancelChallenge(ctx, "nonsense", now); err != nil {
		t.Fatalf("unknown id: %v", err)
	}
}

func matchConsumes(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	save(t, s, c)
	r, got, err := s.AttemptChallenge(ctx, c.ID, c.CodeHash, now)
	if err != nil || r != flow.AttemptMatched || got.Email != "a@b.co" || got.Tenant != "acme" {
		t.Fatalf("match: %v %+v %v", r, got, err)
	}
	if r, _, _ := s.AttemptChallenge(ctx, c.ID, c.CodeHash, now); r != flow.AttemptGone {
		t.Fatalf("second match: %v", r)
	}
}

func wrongTriesExhaust(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	save(t, s, c)
	for want := 1; want <= 2; want++ {
		r, got, err := s.AttemptChallenge(ctx, c.ID, []byte("wrong"), now)
		if err != nil || r != flow.AttemptMismatched || got.Attempts != want || got.TriesLeft() != 3-want {
			t.Fatalf("miss %d: %v %+v %v", want, r, got, err)
		}
	}
	if r, _, _ := s.AttemptChallenge(ctx, c.ID, []byte("wrong"), now); r != flow.AttemptExhausted {
		t.Fatalf("third miss: %v", r)
	}
	if r, _, _ := s.AttemptChallenge(ctx, c.ID, c.CodeHash, now); r != flow.AttemptGone {
		t.Fatalf("right code after exhaustion: %v", r)
	}
}

func expiry(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	c.ExpiresAt = now.Add(300 * time.Millisecond)
	save(t, s, c)
	// Judged by the caller's clock, at once: past ExpiresAt it is gone,
	// whether or not the store has let go of it yet.
	later := now.Add(time.Second)
	if _, err := s.LoadChallenge(ctx, c.ID, later); err != flow.ErrChallengeNotFound {
		t.Errorf("expired challenge loads: %v", err)
	}
	if r, _, _ := s.AttemptChallenge(ctx, c.ID, c.CodeHash, later); r != flow.AttemptGone {
		t.Errorf("expired challenge matches: %v", r)
	}
	// And the store lets go of it on its own clock.
	eventually(t, "an expired challenge is still stored", func() bool {
		_, err := s.LoadChallenge(ctx, c.ID, now)
		return err == flow.ErrChallengeNotFound
	})
}

func parallelMatchOnce(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	save(t, s, c)
	var matched atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, _, err := s.AttemptChallenge(ctx, c.ID, c.CodeHash, now); err == nil && r == flow.AttemptMatched {
				matched.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := matched.Load(); n != 1 {
		t.Fatalf("30 parallel right guesses matched %d times", n)
	}
}

func parallelMissesCounted(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	c.MaxAttempts = 25
	save(t, s, c)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = s.AttemptChallenge(ctx, c.ID, []byte("wrong"), now) }()
	}
	wg.Wait()
	got, err := s.LoadChallenge(ctx, c.ID, now)
	if err != nil || got.Attempts != 20 {
		t.Fatalf("after 20 parallel misses: %+v %v", got, err)
	}
}

func delivery(t *testing.T, s flow.Store) {
	now := time.Now()
	c := challenge("acme", "a@b.co", now)
	save(t, s, c)
	for _, st := range []flow.DeliveryState{flow.DeliveryRetrying, flow.DeliverySent} {
		if err := s.SetDelivery(ctx, c.ID, st); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LoadChallenge(ctx, c.ID, now); got.Delivery != st {
			t.Fatalf("delivery %v, want %v", got.Delivery, st)
		}
	}
	// A superseded or unknown challenge is not an error and changes nothing.
	fresh := challenge("acme", "a@b.co", now)
	save(t, s, fresh)
	if err := s.SetDelivery(ctx, c.ID, flow.DeliveryFailed); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadChallenge(ctx, fresh.ID, now); got.Delivery != flow.DeliveryQueued {
		t.Fatalf("a stale delivery report changed the new challenge: %v", got.Delivery)
	}
	if err := s.SetDelivery(ctx, "", flow.DeliverySent); err != nil {
		t.Fatalf("an envelope without challenge: %v", err)
	}
}

func revocation(t *testing.T, s flow.Store) {
	now := time.Now()
	if err := s.RevokeSession(ctx, "sid-1", now.Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.SessionRevoked(ctx, "sid-1", now); err != nil || !r {
		t.Fatalf("revoked: %v %v", r, err)
	}
	if r, _ := s.SessionRevoked(ctx, "sid-2", now); r {
		t.Fatal("an unrelated session is revoked")
	}
	eventually(t, "a revocation outlives its session", func() bool {
		r, err := s.SessionRevoked(ctx, "sid-1", time.Now())
		return err == nil && !r
	})
}

func unknownIDs(t *testing.T, s flow.Store) {
	now := time.Now()
	for _, id := range []string{"", "nodot", "zz.zz", fmt.Sprint(flow.IdentityTag("acme", "x@y.co"), ".nope"), "../../etc", "{slot}.x"} {
		if _, err := s.LoadChallenge(ctx, id, now); err != flow.ErrChallengeNotFound {
			t.Errorf("LoadChallenge(%q): %v", id, err)
		}
		if r, _, err := s.AttemptChallenge(ctx, id, []byte("x"), now); err != nil || r != flow.AttemptGone {
			t.Errorf("AttemptChallenge(%q): %v %v", id, r, err)
		}
	}
}

func counters(t *testing.T, s flow.Store) {
	now := time.Now()
	for want := 1; want <= 3; want++ {
		n, resets, err := s.Count(ctx, "send:a", 300*time.Millisecond, now)
		if err != nil || n != want || resets.Before(now) || resets.After(now.Add(400*time.Millisecond)) {
			t.Fatalf("count %d: %d %v %v", want, n, resets, err)
		}
	}
	if n, _, _ := s.Count(ctx, "send:b", time.Second, now); n != 1 {
		t.Fatalf("another counter starts at %d", n)
	}
	// Each probe counts too: while the window lasts the count climbs, and
	// once it has passed a new window starts at 1.
	eventually(t, "the window never ends", func() bool {
		n, _, err := s.Count(ctx, "send:a", time.Second, time.Now())
		return err == nil && n == 1
	})
	if err := s.ResetCount(ctx, "send:b"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.Count(ctx, "send:b", time.Second, time.Now()); n != 1 {
		t.Fatalf("after reset: %d", n)
	}
}

func parallelCounts(t *testing.T, s flow.Store) {
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = s.Count(ctx, "fail:x", time.Minute, time.Now()) }()
	}
	wg.Wait()
	if n, _, _ := s.Count(ctx, "fail:x", time.Minute, time.Now()); n != 21 {
		t.Fatalf("20 parallel counts then one: %d", n)
	}
}

func flags(t *testing.T, s flow.Store) {
	now := time.Now()
	if _, up, err := s.Flag(ctx, "notme:x", now); err != nil || up {
		t.Fatalf("unset flag: %v %v", up, err)
	}
	until := now.Add(300 * time.Millisecond)
	if err := s.SetFlag(ctx, "notme:x", until); err != nil {
		t.Fatal(err)
	}
	got, up, err := s.Flag(ctx, "notme:x", now)
	if err != nil || !up || got.UnixMilli() != until.UnixMilli() {
		t.Fatalf("raised flag: %v %v %v", got, up, err)
	}
	// The first raised flag of several, in the order asked.
	if err := s.SetFlag(ctx, "lock:y", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFlag(ctx, "backoff:y", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if i, until, err := s.FirstFlag(ctx, []string{"cooldown:y", "backoff:y", "lock:y"}, now); err != nil || i != 1 || until.UnixMilli() != now.Add(time.Minute).UnixMilli() {
		t.Errorf("first of cooldown (down), backoff, lock: %d %v %v", i, until, err)
	}
	if i, _, err := s.FirstFlag(ctx, []string{"cooldown:z", "notme:z"}, now); err != nil || i != -1 {
		t.Errorf("none raised: %d %v", i, err)
	}
	if i, _, err := s.FirstFlag(ctx, []string{"backoff:y"}, now.Add(2*time.Minute)); err != nil || i != -1 {
		t.Errorf("a flag asked about past its time: %d %v", i, err)
	}
	eventually(t, "the flag outlives its time", func() bool {
		_, up, err := s.Flag(ctx, "notme:x", time.Now())
		return err == nil && !up
	})
}

func peekDoesNotCount(t *testing.T, s flow.Store) {
	now := time.Now()
	if n, _, err := s.Peek(ctx, "send:p", now); err != nil || n != 0 {
		t.Fatalf("an unknown counter: %d %v", n, err)
	}
	_, resets, _ := s.Count(ctx, "send:p", time.Minute, now)
	_, _, _ = s.Count(ctx, "send:p", time.Minute, now)
	for i := 0; i < 3; i++ {
		n, until, err := s.Peek(ctx, "send:p", now)
		if err != nil || n != 2 || until.Before(resets.Add(-time.Second)) || until.After(resets.Add(time.Second)) {
			t.Fatalf("peek %d: %d until %v (resets %v) %v", i, n, until, resets, err)
		}
	}
	if n, _, _ := s.Count(ctx, "send:p", time.Minute, now); n != 3 {
		t.Errorf("peeking counted: the next count is %d, want 3", n)
	}
}

// ceremonyTakenOnce: a passkey ceremony's state comes back exactly as saved,
// once, however many finishers race for it.
func ceremonyTakenOnce(t *testing.T, s flow.Store) {
	now := time.Now()
	if _, err := s.TakeCeremony(ctx, "never-saved", now); err != flow.ErrChallengeNotFound {
		t.Fatalf("unknown ceremony: got %v, want ErrChallengeNotFound", err)
	}
	state := []byte(`{"challenge":"abc"}`)
	if err := s.SaveCeremony(ctx, "c1", state, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := s.TakeCeremony(ctx, "c1", now); err == nil {
				if string(v) != string(state) {
					t.Errorf("state came back as %q, want %q", v, state)
				}
				got.Add(1)
			} else if err != flow.ErrChallengeNotFound {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := got.Load(); n != 1 {
		t.Fatalf("%d finishers took the ceremony, want exactly 1", n)
	}
}

// ceremonyExpires: a ceremony is gone after its time.
func ceremonyExpires(t *testing.T, s flow.Store) {
	if err := s.SaveCeremony(ctx, "short", []byte("x"), time.Now().Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an expired ceremony is gone", func() bool {
		_, err := s.TakeCeremony(ctx, "short", time.Now())
		return err == flow.ErrChallengeNotFound
	})
}
