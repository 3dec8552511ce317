package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
	"github.com/otpgate/caddy-email-otp/internal/mail/delivery"
	"github.com/otpgate/caddy-email-otp/internal/mail/smtpmail"
	"github.com/otpgate/caddy-email-otp/internal/store/memstore"
)

// harness is a queue in front of a real SMTP mailer and server.
type harness struct {
	q     *delivery.Queue
	sink  *smtpsink.Sink
	store *memstore.Store

	mu      sync.Mutex
	reports []delivery.Report
	// told has a value whenever a report arrived since a waiter last looked.
	told chan struct{}
}

func newHarness(t *testing.T, sinkOpts smtpsink.Options, cfg delivery.Config) *harness {
	t.Helper()
	return newHarnessOn(t, memstore.New(memstore.Limits{}), sinkOpts, cfg)
}

// newHarnessOn is newHarness recording delivery states in store (another
// node's queue on the same store).
func newHarnessOn(t *testing.T, store *memstore.Store, sinkOpts smtpsink.Options, cfg delivery.Config) *harness {
	t.Helper()
	h := &harness{sink: smtpsink.StartWith(t, sinkOpts), store: store, told: make(chan struct{}, 1)}
	m, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: h.sink.Port, TLS: smtpmail.TLSNone, From: "docs@example.com", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mailer, cfg.Store = m, h.store
	if cfg.FirstRetry == 0 {
		cfg.FirstRetry = 20 * time.Millisecond
	}
	cfg.Report = func(r delivery.Report) {
		h.mu.Lock()
		h.reports = append(h.reports, r)
		h.mu.Unlock()
		select {
		case h.told <- struct{}{}:
		default:
		}
	}
	h.q = delivery.New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.q.Close(ctx)
	})
	return h
}

// dispatch saves a challenge and queues its envelope.
func (h *harness) dispatch(t *testing.T, to string, decoy bool) (flow.Envelope, error) {
	t.Helper()
	id := flow.IdentityTag("acme", to) + ".0123456789abcdef.x"
	c := flow.Challenge{ID: id, Tenant: "acme", Email: to, ExpiresAt: time.Now().Add(time.Hour), MaxAttempts: 5}
	if err := h.store.SaveChallenge(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	e := flow.Envelope{ChallengeID: id, Tenant: "acme", Decoy: decoy}
	if !decoy {
		e.Message = flow.Message{To: to, Subject: "code", Text: "12345678"}
	}
	return e, h.q.Dispatch(context.Background(), e)
}

// final waits for the envelope's last report (Delivered or Failed) and
// returns it with every event the envelope went through.
func (h *harness) final(t *testing.T, e flow.Envelope) (delivery.Report, []delivery.Event) {
	t.Helper()
	r, events := h.await(t, e, func(r delivery.Report) bool {
		return r.Event == delivery.Delivered || r.Event == delivery.Failed
	})
	return r, events
}

// await blocks until the queue reports an event for e that done accepts,
// woken by the report itself rather than polling a clock.
func (h *harness) await(t *testing.T, e flow.Envelope, done func(delivery.Report) bool) (delivery.Report, []delivery.Event) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		var events []delivery.Event
		for _, r := range h.reports {
			if r.Envelope.ChallengeID != e.ChallengeID {
				continue
			}
			events = append(events, r.Event)
			if done(r) {
				h.mu.Unlock()
				return r, events
			}
		}
		h.mu.Unlock()
		select {
		case <-h.told:
		case <-deadline:
			t.Fatalf("%s: the awaited report never came; events so far: %v", e.ChallengeID, events)
			return delivery.Report{}, nil
		}
	}
}

func (h *harness) state(t *testing.T, e flow.Envelope) flow.DeliveryState {
	t.Helper()
	c, err := h.store.LoadChallenge(context.Background(), e.ChallengeID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.Delivery
}

var tempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

func TestDeliveredOnFirstAttempt(t *testing.T) {
	h := newHarness(t, smtpsink.Options{}, delivery.Config{})
	e, err := h.dispatch(t, "bob@contoso.com", false)
	if err != nil {
		t.Fatal(err)
	}
	r, events := h.final(t, e)
	if r.Event != delivery.Delivered || r.Attempt != 1 || fmt.Sprint(events) != "[queued delivered]" {
		t.Fatalf("report %+v, events %v", r, events)
	}
	if s := h.state(t, e); s != flow.DeliverySent {
		t.Errorf("state %v, want sent", s)
	}
	h.sink.Wait(t, "bob@contoso.com", 1, time.Second)
}

func TestTemporaryFailuresAreRetriedWithBackoff(t *testing.T) {
	h := newHarness(t, smtpsink.Options{}, delivery.Config{FirstRetry: 100 * time.Millisecond})
	h.sink.Refuse(tempFail, tempFail)
	start := time.Now()
	e, _ := h.dispatch(t, "bob@contoso.com", false)
	r, events := h.final(t, e)
	if r.Event != delivery.Delivered || r.Attempt != 3 || fmt.Sprint(events) != "[queued retrying retrying delivered]" {
		t.Fatalf("report %+v, events %v", r, events)
	}
	// Waits of 100ms then 200ms: the backoff doubles.
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("three attempts took %v, want at least the 300ms of backoff", d)
	}
	if h.sink.Attempts() != 3 {
		t.Errorf("%d attempts reached the server", h.sink.Attempts())
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	h := newHarness(t, smtpsink.Options{}, delivery.Config{})
	h.sink.Refuse(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"})
	e, _ := h.dispatch(t, "nobody@contoso.com", false)
	r, _ := h.final(t, e)
	if r.Event != delivery.Failed || r.Attempt != 1 || !flow.IsPermanent(r.Err) {
		t.Fatalf("report %+v", r)
	}
	if s := h.state(t, e); s != flow.DeliveryFailed {
		t.Errorf("state %v, want failed", s)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	h := newHarness(t, smtpsink.Options{}, delivery.Config{MaxAttempts: 3})
	h.sink.Refuse(tempFail, tempFail, tempFail, tempFail)
	e, _ := h.dispatch(t, "bob@contoso.com", false)
	r, _ := h.final(t, e)
	if r.Event != delivery.Failed || r.Attempt != 3 {
		t.Fatalf("report %+v", r)
	}
	if !h.q.Troubled() {
		t.Error("three failed attempts in a row do not count as trouble")
	}
	e2, _ := h.dispatch(t, "carol@contoso.com", false)
	if r, _ := h.final(t, e2); r.Event != delivery.Delivered {
		t.Fatalf("next message: %+v", r)
	}
	if h.q.Troubled() {
		t.Error("a success does not end the trouble")
	}
}

func TestFullQueueRefusesAndDropsNothing(t *testing.T) {
	h := newHarness(t, smtpsink.Options{Delay: 300 * time.Millisecond}, delivery.Config{Workers: 1, Capacity: 2})
	var accepted []flow.Envelope
	busy := 0
	for i := 0; i < 5; i++ {
		e, err := h.dispatch(t, fmt.Sprintf("g%d@contoso.com", i), false)
		switch {
		case errors.Is(err, flow.ErrBusy):
			busy++
		case err != nil:
			t.Fatal(err)
		default:
			accepted = append(accepted, e)
		}
	}
	if len(accepted) != 2 || busy != 3 {
		t.Fatalf("%d accepted, %d busy; want 2 and 3", len(accepted), busy)
	}
	for _, e := range accepted {
		if r, _ := h.final(t, e); r.Event != delivery.Delivered {
			t.Errorf("%s: %+v", e.ChallengeID, r)
		}
	}
	if _, err := h.dispatch(t, "later@contoso.com", false); err != nil {
		t.Errorf("after the queue drained: %v", err)
	}
}

func TestCloseDeliversWaitingRetriesAtOnce(t *testing.T) {
	h := newHarness(t, smtpsink.Options{}, delivery.Config{FirstRetry: time.Hour})
	h.sink.Refuse(tempFail)
	e, _ := h.dispatch(t, "bob@contoso.com", false)
	// The first attempt failed and its retry waits an hour.
	h.await(t, e, func(r delivery.Report) bool { return r.Event == delivery.Retrying })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	h.q.Close(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if r, _ := h.final(t, e); r.Event != delivery.Delivered || r.Attempt != 2 {
		t.Errorf("report %+v: the waiting retry was not tried at shutdown", r)
	}
	if _, err := h.dispatch(t, "after@contoso.com", false); !errors.Is(err, flow.ErrBusy) {
		t.Errorf("a closed queue took an envelope: %v", err)
	}
}

func TestCloseReportsWhatItCannotDeliver(t *testing.T) {
	h := newHarness(t, smtpsink.Options{Delay: 3 * time.Second}, delivery.Config{Workers: 1})
	first, _ := h.dispatch(t, "a@contoso.com", false)
	second, _ := h.dispatch(t, "b@contoso.com", false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	h.q.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close with a 300ms deadline took %v", d)
	}
	for _, e := range []flow.Envelope{first, second} {
		r, _ := h.final(t, e)
		if r.Event != delivery.Failed {
			t.Errorf("%s: %+v, want it reported failed", e.ChallengeID, r)
		}
		if s := h.state(t, e); s != flow.DeliveryFailed {
			t.Errorf("%s: state %v", e.ChallengeID, s)
		}
	}
}

func TestDecoysFollowTheMailersHealth(t *testing.T) {
	h := newHarness(t, smtpsink.Options{}, delivery.Config{MaxAttempts: 3})
	decoy, _ := h.dispatch(t, "denied@example.org", true)
	if r, _ := h.final(t, decoy); r.Event != delivery.Delivered {
		t.Fatalf("decoy while healthy: %+v", r)
	}
	h.sink.Refuse(tempFail, tempFail, tempFail)
	real, _ := h.dispatch(t, "bob@contoso.com", false)
	h.final(t, real)
	decoy2, _ := h.dispatch(t, "denied2@example.org", true)
	r, events := h.final(t, decoy2)
	if r.Event != delivery.Failed || fmt.Sprint(events) != "[queued retrying retrying failed]" {
		t.Fatalf("decoy while failing: %+v %v, want the same path as a real envelope", r, events)
	}
	if n := h.sink.Attempts(); n != 3 {
		t.Errorf("decoys reached the server: %d attempts", n)
	}
}
