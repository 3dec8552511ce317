package flow_test

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/devmail"
	"github.com/otpgate/caddy-email-otp/flow/memstore"
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
}

// direct delivers at once, so tests read the outbox right after Send; the
// queue between the two is tested in flow/delivery.
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
	policy, err := flow.NewPolicy([]string{"*@contoso.com"}, []string{"*@blocked.contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}, outbox: devmail.New(10), store: memstore.New(memstore.Limits{})}
	if dispatcher == nil {
		dispatcher = direct(f.outbox)
	}
	f.svc, err = flow.New(flow.Config{
		CodeTTL: 30 * time.Minute, SessionTTL: 24 * time.Hour, CodeLength: 8, MaxAttempts: 5,
		Policy: policy, Keys: keys, Store: f.store, Dispatcher: dispatcher, Clock: f.clock,
		Compose: func(m flow.CodeMail) (flow.Message, error) {
			return flow.Message{To: m.To, Subject: "code", Text: "code: " + m.Code + " for " + m.Tenant}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var codeRE = regexp.MustCompile(`code: (\d+)`)

func (f *fixture) send(t *testing.T, tenant, email string) (flow.Challenge, string) {
	t.Helper()
	res, err := f.svc.Send(context.Background(), flow.SendRequest{Tenant: tenant, Email: email, Resource: "/doc"})
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
	if err := f.svc.Authenticate(ctx, "acme", s); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if err := f.svc.Authenticate(ctx, "globex", s); !errors.Is(err, flow.ErrWrongTenant) {
		t.Fatalf("other tenant: %v", err)
	}
	// Single use.
	if res, _ := f.svc.Verify(ctx, "acme", ch.ID, code); res.Outcome != flow.Expired {
		t.Fatalf("second use: %v", res.Outcome)
	}
	// 24 hours later the session is over, with no sliding.
	f.clock.Advance(24*time.Hour - time.Second)
	if err := f.svc.Authenticate(ctx, "acme", s); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	if err := f.svc.Authenticate(ctx, "acme", s); !errors.Is(err, flow.ErrSessionExpired) {
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
	if err := f.svc.Authenticate(ctx, "acme", res.Session); !errors.Is(err, flow.ErrSessionRevoked) {
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
