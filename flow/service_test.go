package flow_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/mail/devmail"
	"github.com/otpgate/caddy-email-otp/internal/store/memstore"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc    *flow.Service
	clock  *fakeClock
	outbox *devmail.Outbox
	store  *memstore.Store
	guests *directory.Directory
	cfg    flow.Config
}

// direct delivers at once, so tests read the outbox right after Send; the
// queue between the two is tested in internal/mail/delivery.
func direct(m flow.Mailer) flow.Dispatcher {
	return flow.DispatcherFunc(func(ctx context.Context, e flow.Envelope) error {
		if e.Decoy {
			return nil
		}
		return m.Send(ctx, e.Message)
	})
}

func newFixture(t *testing.T, dispatcher flow.Dispatcher) *fixture {
	t.Helper()
	keys, err := flow.NewKeys(flow.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	policy, err := flow.NewPolicy([]string{"*@contoso.com"}, []string{"*@blocked.contoso.com"}, false)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}, outbox: devmail.New(10), store: memstore.New(memstore.Limits{})}
	f.guests = directory.New(&certmagic.FileStorage{Path: t.TempDir()}, 100, time.Minute)
	if dispatcher == nil {
		dispatcher = direct(f.outbox)
	}
	f.cfg = flow.Config{
		CodeTTL: 30 * time.Minute, SessionTTL: 24 * time.Hour, CodeLength: 8, MaxAttempts: 5,
		Policy: policy, Keys: keys, Store: f.store, Dispatcher: dispatcher, Clock: f.clock, Guests: f.guests,
		Compose: func(m flow.CodeMail) (flow.Message, error) {
			return flow.Message{To: m.To, Subject: "code", Text: "code: " + m.Code + " for " + m.Tenant}, nil
		},
	}
	f.svc = mustService(t, f, func(*flow.Config) {})
	return f
}

// mustService builds a service from the fixture's config as mut changes it.
func mustService(t *testing.T, f *fixture, mut func(*flow.Config)) *flow.Service {
	t.Helper()
	cfg := f.cfg
	mut(&cfg)
	svc, err := flow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var codeRE = regexp.MustCompile(`code: (\d+)`)

func (f *fixture) send(t *testing.T, tenant, email string) (flow.Challenge, string) {
	t.Helper()
	return f.sendFrom(t, "browser-1", tenant, email)
}

// sendFrom asks for a code from one browser (its pending nonce).
func (f *fixture) sendFrom(t *testing.T, browser, tenant, email string) (flow.Challenge, string) {
	t.Helper()
	res, err := f.svc.Send(context.Background(), flow.SendRequest{Tenant: tenant, Email: email, Resource: "/doc", Browser: browser})
	if err != nil {
		t.Fatalf("Send(%s): %v", email, err)
	}
	if !res.Permitted {
		return res.Challenge, ""
	}
	msgs := f.outbox.Messages()
	if len(msgs) == 0 {
		t.Fatal("no message in the outbox")
	}
	m := codeRE.FindStringSubmatch(msgs[0].Text)
	return res.Challenge, m[1]
}

func TestCodeLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, code := f.send(t, "acme", "Bob@Contoso.com")
	if ch.Email != "bob@contoso.com" || ch.Tenant != "acme" || !ch.ExpiresAt.Equal(f.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("challenge = %+v", ch)
	}
	if len(code) != 8 {
		t.Fatalf("code %q", code)
	}
	if string(ch.CodeHash) == code {
		t.Fatal("the store holds the code itself")
	}
	res, err := f.svc.Verify(ctx, "acme", ch.ID, code)
	if err != nil || res.Outcome != flow.Verified {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	s := res.Session
	if s.Email != "bob@contoso.com" || s.Tenant != "acme" || s.ExpiresAt-s.IssuedAt != 24*3600 || s.ID == "" {
		t.Fatalf("session = %+v", s)
	}
	if _, err := f.svc.Authenticate(ctx, "acme", s); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, "globex", s); !errors.Is(err, flow.ErrWrongTenant) {
		t.Fatalf("other tenant: %v", err)
	}
	// Single use.
	if res, _ := f.svc.Verify(ctx, "acme", ch.ID, code); res.Outcome != flow.Expired {
		t.Fatalf("second use: %v", res.Outcome)
	}
	// 24 hours later the session is over, with no sliding.
	f.clock.Advance(24*time.Hour - time.Second)
	if _, err := f.svc.Authenticate(ctx, "acme", s); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.svc.Authenticate(ctx, "acme", s); !errors.Is(err, flow.ErrSessionExpired) {
		t.Fatalf("at expiry: %v", err)
	}
}

func TestCodeExpires(t *testing.T) {
	f := newFixture(t, nil)
	ch, code := f.send(t, "acme", "bob@contoso.com")
	f.clock.Advance(30 * time.Minute)
	if res, _ := f.svc.Verify(context.Background(), "acme", ch.ID, code); res.Outcome != flow.Expired {
		t.Fatalf("code after 30 minutes: %v", res.Outcome)
	}
}

func TestCodeIsBoundToTenant(t *testing.T) {
	f := newFixture(t, nil)
	ch, code := f.send(t, "acme", "bob@contoso.com")
	if res, _ := f.svc.Verify(context.Background(), "globex", ch.ID, code); res.Outcome == flow.Verified {
		t.Fatal("acme's code opened globex")
	}
}

func TestWrongTriesKillTheCode(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, code := f.send(t, "acme", "bob@contoso.com")
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	for left := 4; left >= 1; left-- {
		res, _ := f.svc.Verify(ctx, "acme", ch.ID, wrong)
		if res.Outcome != flow.WrongCode || res.TriesLeft != left {
			t.Fatalf("wrong try: %+v, want %d left", res, left)
		}
	}
	if res, _ := f.svc.Verify(ctx, "acme", ch.ID, wrong); res.Outcome != flow.Locked {
		t.Fatalf("fifth wrong try: %v", res.Outcome)
	}
	if res, _ := f.svc.Verify(ctx, "acme", ch.ID, code); res.Outcome != flow.Expired {
		t.Fatalf("right code after lock: %v", res.Outcome)
	}
}

func TestMalformedCodeUsesNoTry(t *testing.T) {
	f := newFixture(t, nil)
	ch, _ := f.send(t, "acme", "bob@contoso.com")
	for i := 0; i < 10; i++ {
		res, _ := f.svc.Verify(context.Background(), "acme", ch.ID, "abc")
		if res.Outcome != flow.Malformed || res.TriesLeft != 5 {
			t.Fatalf("malformed: %+v", res)
		}
	}
}

func TestCodesOfTwoBrowsersAreIndependent(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	owner, ownerCode := f.sendFrom(t, "owner's browser", "acme", "bob@contoso.com")
	stranger, _ := f.sendFrom(t, "stranger's browser", "acme", "bob@contoso.com")
	if stranger.ID == owner.ID {
		t.Fatal("one id for two browsers")
	}
	if res, _ := f.svc.Verify(ctx, "acme", owner.ID, ownerCode); res.Outcome != flow.Verified {
		t.Fatalf("the owner's code after a stranger's send: %v", res.Outcome)
	}
}

func TestNewCodeSupersedesOlder(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	old, oldCode := f.send(t, "acme", "bob@contoso.com")
	fresh, freshCode := f.send(t, "acme", "BOB@contoso.com")
	if res, _ := f.svc.Verify(ctx, "acme", old.ID, oldCode); res.Outcome != flow.Expired {
		t.Fatalf("old code: %v", res.Outcome)
	}
	// Another tenant's code for the same address is independent.
	other, otherCode := f.send(t, "globex", "bob@contoso.com")
	if res, _ := f.svc.Verify(ctx, "acme", fresh.ID, freshCode); res.Outcome != flow.Verified {
		t.Fatalf("new code: %v", res.Outcome)
	}
	if res, _ := f.svc.Verify(ctx, "globex", other.ID, otherCode); res.Outcome != flow.Verified {
		t.Fatalf("other tenant's code: %v", res.Outcome)
	}
}

func TestDeniedAddressGetsDecoyAndNoMail(t *testing.T) {
	f := newFixture(t, nil)
	for _, addr := range []string{"x@blocked.contoso.com", "x@example.org"} {
		ch, _ := f.send(t, "acme", addr)
		if ch.ID == "" {
			t.Fatal("no decoy challenge")
		}
		if _, err := f.svc.Pending(context.Background(), "acme", ch.ID); err != nil {
			t.Fatalf("decoy is not pending: %v", err)
		}
	}
	if n := len(f.outbox.Messages()); n != 0 {
		t.Fatalf("%d messages sent to denied addresses", n)
	}
}

func TestParallelVerificationIssuesOneSession(t *testing.T) {
	f := newFixture(t, nil)
	ch, code := f.send(t, "acme", "bob@contoso.com")
	const n = 50
	var verified atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := f.svc.Verify(context.Background(), "acme", ch.ID, code)
			if err != nil {
				t.Error(err)
			}
			if res.Outcome == flow.Verified {
				verified.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := verified.Load(); got != 1 {
		t.Fatalf("%d parallel submissions of one code gave %d sessions, want 1", n, got)
	}
}

func TestParallelWrongGuessesAreAllCounted(t *testing.T) {
	f := newFixture(t, nil)
	ch, code := f.send(t, "acme", "bob@contoso.com")
	wrong := "00000000"
	if code == wrong {
		wrong = "11111111"
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = f.svc.Verify(context.Background(), "acme", ch.ID, wrong) }()
	}
	wg.Wait()
	if res, _ := f.svc.Verify(context.Background(), "acme", ch.ID, code); res.Outcome != flow.Expired {
		t.Fatalf("after 20 parallel wrong guesses the right code gives %v, want the code dead", res.Outcome)
	}
}

func TestSignOutRevokes(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, code := f.send(t, "acme", "bob@contoso.com")
	res, _ := f.svc.Verify(ctx, "acme", ch.ID, code)
	if err := f.svc.SignOut(ctx, res.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, "acme", res.Session); !errors.Is(err, flow.ErrSessionRevoked) {
		t.Fatalf("after sign-out: %v", err)
	}
}

func TestFullQueueIsErrBusyForEveryAddress(t *testing.T) {
	busy := flow.DispatcherFunc(func(context.Context, flow.Envelope) error { return flow.ErrBusy })
	f := newFixture(t, busy)
	for _, addr := range []string{"bob@contoso.com", "x@example.org"} {
		_, err := f.svc.Send(context.Background(), flow.SendRequest{Tenant: "acme", Email: addr})
		if !errors.Is(err, flow.ErrBusy) {
			t.Errorf("%s: err = %v, want ErrBusy", addr, err)
		}
	}
}

func TestDecoyEnvelopeCarriesNoMessage(t *testing.T) {
	var got []flow.Envelope
	f := newFixture(t, flow.DispatcherFunc(func(_ context.Context, e flow.Envelope) error {
		got = append(got, e)
		return nil
	}))
	for _, addr := range []string{"x@example.org", "bob@contoso.com"} {
		if _, err := f.svc.Send(context.Background(), flow.SendRequest{Tenant: "acme", Email: addr}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || !got[0].Decoy || got[0].Message != (flow.Message{}) || got[1].Decoy || got[1].Message.To != "bob@contoso.com" {
		t.Fatalf("envelopes = %+v", got)
	}
}

func TestInvalidAddressIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.svc.Send(context.Background(), flow.SendRequest{Tenant: "acme", Email: "Bob <bob@contoso.com>"})
	if !errors.Is(err, flow.ErrInvalidAddress) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	keys, _ := flow.NewKeys(flow.NewSecret())
	base := flow.Config{CodeTTL: time.Minute, SessionTTL: time.Hour, CodeLength: 8, MaxAttempts: 5,
		Keys: keys, Store: memstore.New(memstore.Limits{}), Dispatcher: direct(devmail.New(1)),
		Guests:  directory.New(&certmagic.FileStorage{Path: t.TempDir()}, 10, time.Minute),
		Compose: func(flow.CodeMail) (flow.Message, error) { return flow.Message{}, nil }}
	for name, mut := range map[string]func(*flow.Config){
		"zero code ttl":    func(c *flow.Config) { c.CodeTTL = 0 },
		"zero session ttl": func(c *flow.Config) { c.SessionTTL = 0 },
		"5 digits":         func(c *flow.Config) { c.CodeLength = 5 },
		"0 attempts":       func(c *flow.Config) { c.MaxAttempts = 0 },
		"no store":         func(c *flow.Config) { c.Store = nil },
	} {
		c := base
		mut(&c)
		if _, err := flow.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := flow.NewKeys(make([]byte, 16)); err == nil {
		t.Error("a 16-byte secret was accepted")
	}
}

// invite makes an admin invitation for addr.
func (f *fixture) invite(t *testing.T, tenant, addr string, expires *time.Time) {
	t.Helper()
	_, err := f.guests.Update(context.Background(), tenant, addr, f.clock.Now(), func(g *directory.Guest, _ bool) (bool, error) {
		now := f.clock.Now()
		g.Status, g.InvitedAt, g.InviteExpires, g.InvitedBy = directory.Invited, &now, expires, "ops@example.com"
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestInvitationAdmitsOutsideTheAllowList(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, code := f.send(t, "acme", "guest@gmail.com")
	if code != "" {
		t.Fatal("an uninvited, unlisted address got a code")
	}
	f.invite(t, "acme", "guest@gmail.com", nil)
	ch, code = f.send(t, "acme", "guest@gmail.com")
	if code == "" {
		t.Fatal("an invited address got no code")
	}
	res, err := f.svc.Verify(ctx, "acme", ch.ID, code)
	if err != nil || res.Outcome != flow.Verified {
		t.Fatalf("verify: %+v %v", res, err)
	}
	g, err := f.svc.Authenticate(ctx, "acme", res.Session)
	if err != nil || g.Status != directory.Redeemed || g.RedeemedAt == nil || g.LastSignIn == nil {
		t.Fatalf("after sign-in: %+v %v", g, err)
	}
	if !f.svc.AdmitsGuest(g) {
		t.Error("the invited guest is not admitted")
	}
}

func TestExpiredInvitationAndBlockListRefuse(t *testing.T) {
	f := newFixture(t, nil)
	past := f.clock.Now().Add(-time.Minute)
	f.invite(t, "acme", "late@gmail.com", &past)
	if _, code := f.send(t, "acme", "late@gmail.com"); code != "" {
		t.Error("an expired invitation got a code")
	}
	f.invite(t, "acme", "x@blocked.contoso.com", nil)
	if _, code := f.send(t, "acme", "x@blocked.contoso.com"); code != "" {
		t.Error("an invitation beat the block list")
	}
}

func TestRevokedOrDeletedGuestLosesSessionsAndCodes(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	ch, code := f.send(t, "acme", "bob@contoso.com")
	res, _ := f.svc.Verify(ctx, "acme", ch.ID, code)
	pending, pendingCode := f.send(t, "acme", "bob@contoso.com")

	f.clock.Advance(1500 * time.Millisecond)
	_, err := f.guests.Update(ctx, "acme", "bob@contoso.com", f.clock.Now(), func(g *directory.Guest, _ bool) (bool, error) {
		g.Status = directory.Revoked
		g.VoidSessions(f.clock.Now())
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, "acme", res.Session); !errors.Is(err, flow.ErrSessionRevoked) {
		t.Errorf("session after revocation: %v", err)
	}
	if r, _ := f.svc.Verify(ctx, "acme", pending.ID, pendingCode); r.Outcome == flow.Verified {
		t.Error("a code sent before the revocation still signs in")
	}
	if _, code := f.send(t, "acme", "bob@contoso.com"); code != "" {
		t.Error("a revoked guest got a code")
	}
	// Deleted: the record is gone, and so are the sessions.
	other, otherCode := f.send(t, "acme", "carol@contoso.com")
	r2, _ := f.svc.Verify(ctx, "acme", other.ID, otherCode)
	if _, err := f.guests.Update(ctx, "acme", "carol@contoso.com", f.clock.Now(), func(*directory.Guest, bool) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, "acme", r2.Session); !errors.Is(err, flow.ErrSessionRevoked) {
		t.Errorf("session after deletion: %v", err)
	}
}

func TestConsentHoldsTheRedemption(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.svc = mustService(t, f, func(c *flow.Config) { c.Consent = true })
	ch, code := f.send(t, "acme", "dora@contoso.com")
	res, err := f.svc.Verify(ctx, "acme", ch.ID, code)
	if err != nil || res.Outcome != flow.Verified || !res.NeedsConsent {
		t.Fatalf("first sign-in: %+v %v", res, err)
	}
	if _, err := f.guests.Get(ctx, "acme", "dora@contoso.com"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("recorded before consent: %v", err)
	}
	if g, err := f.svc.Redeem(ctx, res.Session); err != nil || g.Status != directory.Redeemed {
		t.Fatalf("redeem: %+v %v", g, err)
	}
	ch, code = f.send(t, "acme", "dora@contoso.com")
	if res, _ := f.svc.Verify(ctx, "acme", ch.ID, code); res.NeedsConsent {
		t.Error("consent asked again after redemption")
	}
}

func TestAnInvitationCanAskConsentWhereTheGatewayDoesNot(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for email, ask := range map[string]bool{"erin@contoso.com": true, "finn@contoso.com": false} {
		if _, _, _, err := f.guests.Invite(ctx, "acme", email, directory.Invitation{AskConsent: ask}, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		ch, code := f.send(t, "acme", email)
		res, err := f.svc.Verify(ctx, "acme", ch.ID, code)
		if err != nil || res.Outcome != flow.Verified || res.NeedsConsent != ask {
			t.Fatalf("%s (invitation asks consent: %v): %+v %v", email, ask, res, err)
		}
		if g, _ := f.guests.Get(ctx, "acme", email); (g.Status == directory.Redeemed) == ask {
			t.Errorf("%s: status %s after verifying", email, g.Status)
		}
	}
	if _, err := f.svc.Redeem(ctx, flow.Session{Tenant: "acme", Email: "erin@contoso.com"}); err != nil {
		t.Fatal(err)
	}
	ch, code := f.send(t, "acme", "erin@contoso.com")
	if res, _ := f.svc.Verify(ctx, "acme", ch.ID, code); res.NeedsConsent {
		t.Error("consent asked again after redemption")
	}
}

func withLimits(t *testing.T, f *fixture, l flow.Limits) {
	f.svc = mustService(t, f, func(c *flow.Config) { c.Limits = l })
}

func sendReq(f *fixture, tenant, email, ip string) (flow.SendResult, error) {
	return f.svc.Send(context.Background(), flow.SendRequest{Tenant: tenant, Email: email, ClientIP: ip})
}

func TestCooldownAndPerAddressLimitHoldQuietlyForEveryAddress(t *testing.T) {
	f := newFixture(t, nil)
	withLimits(t, f, flow.Limits{Cooldown: time.Minute, PerAddress: flow.Rate{N: 2, Window: time.Hour}})
	for _, addr := range []string{"bob@contoso.com", "x@example.org"} { // allowed and denied alike
		first, err := sendReq(f, "acme", addr, "")
		if err != nil || !first.Held.IsZero() || first.Challenge.ID == "" {
			t.Fatalf("%s first send: %+v %v", addr, first, err)
		}
		second, err := sendReq(f, "acme", addr, "")
		if err != nil || !second.Held.Equal(f.clock.Now().Add(time.Minute)) || second.Challenge.ID != "" || second.HeldWhy != "cooldown" {
			t.Fatalf("%s within the cooldown: %+v %v", addr, second, err)
		}
		f.clock.Advance(61 * time.Second)
		if r, _ := sendReq(f, "acme", addr, ""); !r.Held.IsZero() {
			t.Fatalf("%s after the cooldown: %+v", addr, r)
		}
		f.clock.Advance(61 * time.Second)
		if r, _ := sendReq(f, "acme", addr, ""); r.HeldWhy != "per-address limit" {
			t.Fatalf("%s third in the hour: %+v", addr, r)
		}
	}
	if n := len(f.outbox.Messages()); n != 2 {
		t.Errorf("%d messages, want 2 (the allowed address, twice)", n)
	}
}

func TestPerIPAndPerTenantLimitsAreErrors(t *testing.T) {
	f := newFixture(t, nil)
	withLimits(t, f, flow.Limits{PerIP: flow.Rate{N: 2, Window: time.Hour}, PerTenant: flow.Rate{N: 3, Window: time.Hour}})
	sendReq(f, "acme", "a@contoso.com", "192.0.2.1")
	sendReq(f, "acme", "b@contoso.com", "192.0.2.1")
	_, err := sendReq(f, "acme", "c@contoso.com", "192.0.2.1")
	var rl flow.RateLimitError
	if !errors.As(err, &rl) || rl.Scope != "client IP" || !errors.Is(err, flow.ErrRateLimited) {
		t.Fatalf("third from one IP: %v", err)
	}
	if _, err := sendReq(f, "acme", "d@contoso.com", "192.0.2.2"); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	if _, err := sendReq(f, "acme", "e@contoso.com", "192.0.2.3"); !errors.As(err, &rl) || rl.Scope != "tenant" {
		t.Fatalf("fourth for the tenant: %v", err)
	}
	if _, err := sendReq(f, "globex", "e@contoso.com", "192.0.2.3"); err != nil {
		t.Fatalf("another tenant: %v", err)
	}
}

func TestWrongTriesAcrossCodesBackOffThenLock(t *testing.T) {
	f := newFixture(t, nil)
	withLimits(t, f, flow.Limits{BackoffBase: time.Minute, BackoffMax: 4 * time.Minute, LockAfter: 20, LockFor: 24 * time.Hour})
	ctx := context.Background()
	killCode := func() {
		t.Helper()
		ch, code := f.send(t, "acme", "bob@contoso.com")
		if ch.ID == "" || code == "" {
			t.Fatal("no code to kill")
		}
		for i := 0; i < 5; i++ {
			_, _ = f.svc.Verify(ctx, "acme", ch.ID, wrongDigits(code))
		}
	}
	for k, wait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		killCode()
		r, _ := sendReq(f, "acme", "bob@contoso.com", "")
		if r.HeldWhy != "backoff" || !r.Held.Equal(f.clock.Now().Add(wait)) {
			t.Fatalf("after %d dead codes: %+v, want a back-off of %v", k+1, r, wait)
		}
		f.clock.Advance(wait)
	}
	killCode() // 20 wrong tries in a row
	if r, _ := sendReq(f, "acme", "bob@contoso.com", ""); r.HeldWhy != "lock" || !r.Held.Equal(f.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("after 20 wrong tries: %+v", r)
	}
}

func TestSuccessEndsTheRunOfWrongTries(t *testing.T) {
	f := newFixture(t, nil)
	withLimits(t, f, flow.Limits{BackoffBase: time.Minute, BackoffMax: time.Hour, LockAfter: 6, LockFor: time.Hour})
	ctx := context.Background()
	ch, code := f.send(t, "acme", "bob@contoso.com")
	for i := 0; i < 4; i++ {
		f.svc.Verify(ctx, "acme", ch.ID, wrongDigits(code))
	}
	if r, _ := f.svc.Verify(ctx, "acme", ch.ID, code); r.Outcome != flow.Verified {
		t.Fatal(r.Outcome)
	}
	ch, code = f.send(t, "acme", "bob@contoso.com")
	for i := 0; i < 4; i++ { // 8 in all, but not in a row
		f.svc.Verify(ctx, "acme", ch.ID, wrongDigits(code))
	}
	if r, _ := sendReq(f, "acme", "bob@contoso.com", ""); r.HeldWhy == "lock" {
		t.Fatal("wrong tries before a success still count")
	}
}

// A browser in which the address signed in before (its device marker knows
// the identity tag) has limits of its own: strangers' sends, wrong codes and
// "this wasn't me" don't hold it, and strangers stay capped.
func TestOwnersBrowserHasItsOwnLimits(t *testing.T) {
	f := newFixture(t, nil)
	withLimits(t, f, flow.Limits{PerAddress: flow.Rate{N: 5, Window: time.Hour}, BackoffBase: time.Hour, BackoffMax: time.Hour,
		LockAfter: 10, LockFor: 24 * time.Hour, NotMeFor: time.Hour})
	ctx := context.Background()
	addr := "bob@contoso.com"
	owner := flow.SendRequest{Tenant: "acme", Email: addr, Browser: "owner", Devices: []flow.Device{{ID: "dev-1", Tags: []string{flow.IdentityTag("acme", addr)}}}}
	stranger := func(i int) (flow.SendResult, error) {
		return f.svc.Send(ctx, flow.SendRequest{Tenant: "acme", Email: addr, Browser: fmt.Sprint("stranger-", i)})
	}
	// A stranger kills a code (back-off for strangers)...
	res, err := stranger(1)
	if err != nil || !res.Held.IsZero() {
		t.Fatalf("stranger's send: %+v %v", res, err)
	}
	for j := 0; j < 5; j++ {
		f.svc.Verify(ctx, "acme", res.Challenge.ID, "00000000")
	}
	if res, _ := stranger(2); res.HeldWhy != "backoff" {
		t.Fatalf("strangers after a dead code: %+v", res)
	}
	// ... and reports the code as "not me" (any link of the address would do).
	if _, err := f.svc.NotMe(ctx, "acme", addr, res.Challenge.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	res, err = f.svc.Send(ctx, owner)
	if err != nil || !res.Held.IsZero() || !res.Permitted {
		t.Fatalf("the owner's browser is held by strangers: %+v %v", res, err)
	}
	// The marker must name this address: another's marker is a stranger's.
	other := owner
	other.Devices = []flow.Device{{ID: "dev-1", Tags: []string{flow.IdentityTag("acme", "eve@contoso.com")}}}
	if res, _ := f.svc.Send(ctx, other); res.Held.IsZero() {
		t.Fatal("a marker of another address passed as the owner's")
	}
}

func TestNotMeCancelsAndHolds(t *testing.T) {
	f := newFixture(t, nil)
	withLimits(t, f, flow.Limits{NotMeFor: time.Hour})
	ctx := context.Background()
	ch, code := f.send(t, "acme", "bob@contoso.com")
	until, err := f.svc.NotMe(ctx, "acme", "bob@contoso.com", ch.ID, 2*time.Hour)
	if err != nil || !until.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("NotMe: %v %v", until, err)
	}
	if _, err := f.svc.NotMe(ctx, "acme", "bob@contoso.com", ch.ID, 2*time.Hour); !errors.Is(err, flow.ErrNotMeUsed) {
		t.Fatalf("a second use: %v, want ErrNotMeUsed", err)
	}
	if _, err := f.svc.NotMe(ctx, "acme", "eve@contoso.com", ch.ID, 2*time.Hour); err == nil {
		t.Fatal("a link of bob's code acted on eve's address")
	}
	if r, _ := f.svc.Verify(ctx, "acme", ch.ID, code); r.Outcome == flow.Verified {
		t.Fatal("the reported code still signs in")
	}
	if r, _ := sendReq(f, "acme", "bob@contoso.com", ""); r.HeldWhy != "notme" {
		t.Fatalf("after the report: %+v", r)
	}
	if r, _ := sendReq(f, "globex", "bob@contoso.com", ""); !r.Held.IsZero() {
		t.Fatalf("another tenant is held too: %+v", r)
	}
}

func wrongDigits(code string) string {
	if code == "00000000" {
		return "11111111"
	}
	return "00000000"
}

func TestExplainSaysWhichRuleDecides(t *testing.T) {
	f := newFixture(t, nil)
	for addr, want := range map[string]string{
		"ann@contoso.com":         "allowed by the pattern *@contoso.com",
		"eve@blocked.contoso.com": "blocked by the pattern *@blocked.contoso.com",
		"joe@unlisted.io":         "on no allow pattern, and not invited",
	} {
		ex, err := f.svc.Explain(context.Background(), "acme", addr)
		if err != nil || ex.Rule != want || ex.MayGetCodes != strings.HasPrefix(want, "allowed") {
			t.Errorf("%s: %+v %v", addr, ex, err)
		}
	}
}
