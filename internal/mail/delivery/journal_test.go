package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
	"github.com/otpgate/caddy-email-otp/internal/mail/delivery"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// redisJournal is the queue's journal on a real Redis outbox; the Caddy
// module seals the records, this test keeps them as JSON.
type redisJournal struct{ out *redisstore.Store }

const outboxName = "test"

// record is what the journal keeps of an envelope (a channel can't go).
type record struct {
	ChallengeID, Tenant string
	Message             flow.Message
	Decoy               bool
}

func (j redisJournal) Keep(ctx context.Context, e flow.Envelope, until time.Time) (string, error) {
	b, err := json.Marshal(record{e.ChallengeID, e.Tenant, e.Message, e.Decoy})
	if err != nil {
		return "", err
	}
	return j.out.Keep(ctx, outboxName, b, until)
}

func (j redisJournal) Renew(ctx context.Context, tickets []string, until time.Time) error {
	return j.out.Renew(ctx, outboxName, tickets, until)
}

func (j redisJournal) Done(ctx context.Context, ticket string) error {
	return j.out.Done(ctx, outboxName, ticket)
}

func (j redisJournal) Claim(ctx context.Context, now, until time.Time, max int) ([]delivery.Kept, error) {
	tickets, sealed, err := j.out.Claim(ctx, outboxName, now, until, max)
	kept := make([]delivery.Kept, len(tickets))
	for i := range tickets {
		var r record
		if err := json.Unmarshal(sealed[i], &r); err != nil {
			return nil, err
		}
		kept[i] = delivery.Kept{Ticket: tickets[i], Envelope: flow.Envelope{ChallengeID: r.ChallengeID, Tenant: r.Tenant, Message: r.Message, Decoy: r.Decoy}}
	}
	return kept, err
}

func outbox(t *testing.T) (*redisstore.Store, redisJournal) {
	t.Helper()
	srv := redisserver.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := redisstore.New(rdb, redisstore.Options{})
	return s, redisJournal{s}
}

// leftByADeadNode is what a node killed right after accepting a send
// leaves: the message in the outbox, its lease running out.
func leftByADeadNode(t *testing.T, j redisJournal, h *harness, to string) flow.Envelope {
	t.Helper()
	id := flow.IdentityTag("acme", to) + ".0123456789abcdef.x"
	if err := h.store.SaveChallenge(context.Background(), flow.Challenge{ID: id, Tenant: "acme", Email: to, ExpiresAt: time.Now().Add(time.Hour), MaxAttempts: 5}); err != nil {
		t.Fatal(err)
	}
	e := flow.Envelope{ChallengeID: id, Tenant: "acme", Message: flow.Message{To: to, Subject: "code", Text: "12345678"}}
	if _, err := j.Keep(context.Background(), e, time.Now().Add(-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	return e
}

func outboxLen(t *testing.T, s *redisstore.Store) int64 {
	t.Helper()
	n, err := s.JournalLen(context.Background(), outboxName)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestADeadNodesMessagesAreDeliveredOnceByTheLiving(t *testing.T) {
	s, j := outbox(t)
	// Two living queues share the outbox with the dead node.
	a := newHarness(t, smtpsink.Options{}, delivery.Config{Journal: j, Lease: 300 * time.Millisecond})
	b := newHarnessOn(t, a.store, smtpsink.Options{}, delivery.Config{Journal: j, Lease: 300 * time.Millisecond})
	var left []flow.Envelope
	for i := range 20 {
		left = append(left, leftByADeadNode(t, j, a, fmt.Sprintf("guest%02d@contoso.com", i)))
	}
	for _, e := range left {
		to := e.Message.To
		deadline := time.Now().Add(5 * time.Second)
		for a.sink.Count(to)+b.sink.Count(to) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := a.sink.Count(to) + b.sink.Count(to); n != 1 {
			t.Errorf("%s: %d messages, want 1", to, n)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); outboxLen(t, s) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := outboxLen(t, s); n != 0 {
		t.Errorf("the outbox still holds %d delivered messages", n)
	}
	t.Logf("node A delivered %d, node B %d", len(a.sink.Messages()), len(b.sink.Messages()))
}

func TestAcceptedMessagesAreKeptUntilDelivered(t *testing.T) {
	s, j := outbox(t)
	h := newHarness(t, smtpsink.Options{}, delivery.Config{Journal: j, FirstRetry: time.Hour})
	h.sink.Refuse(tempFail)
	e, err := h.dispatch(t, "ann@contoso.com", false)
	if err != nil {
		t.Fatal(err)
	}
	h.await(t, e, func(r delivery.Report) bool { return r.Event == delivery.Retrying })
	if n := outboxLen(t, s); n != 1 {
		t.Fatalf("a message waiting for its retry: outbox holds %d, want 1", n)
	}
}

func TestAShutdownLeavesUndeliveredMessagesForAnotherNode(t *testing.T) {
	s, j := outbox(t)
	first := newHarness(t, smtpsink.Options{}, delivery.Config{Journal: j, FirstRetry: time.Hour, Lease: 300 * time.Millisecond})
	first.sink.Refuse(tempFail, tempFail)
	e, err := first.dispatch(t, "bea@contoso.com", false)
	if err != nil {
		t.Fatal(err)
	}
	first.await(t, e, func(r delivery.Report) bool { return r.Event == delivery.Retrying })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	first.q.Close(ctx) // the last attempt is refused too
	cancel()
	if st := first.state(t, e); st == flow.DeliveryFailed {
		t.Error("a message left for another node shows the guest 'failed'")
	}
	if n := outboxLen(t, s); n != 1 {
		t.Fatalf("after the shutdown the outbox holds %d, want 1", n)
	}
	next := newHarnessOn(t, first.store, smtpsink.Options{}, delivery.Config{Journal: j, Lease: 300 * time.Millisecond})
	if r, _ := next.final(t, e); r.Event != delivery.Delivered || !r.Recovered {
		t.Errorf("the next node: %+v", r)
	}
	next.sink.Wait(t, "bea@contoso.com", 1, 5*time.Second)
	if st := first.state(t, e); st != flow.DeliverySent {
		t.Errorf("after another node delivered it: %v", st)
	}
}

func TestAClaimedMessageWhoseCodeIsGoneIsDropped(t *testing.T) {
	s, j := outbox(t)
	gone := func(ctx context.Context, e flow.Envelope) bool { return false }
	h := newHarness(t, smtpsink.Options{}, delivery.Config{Journal: j, Lease: 300 * time.Millisecond, StillWanted: gone})
	leftByADeadNode(t, j, h, "cy@contoso.com")
	for deadline := time.Now().Add(5 * time.Second); outboxLen(t, s) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := outboxLen(t, s); n != 0 {
		t.Fatalf("outbox holds %d", n)
	}
	if n := h.sink.Count("cy@contoso.com"); n != 0 {
		t.Errorf("a message nobody wants any more was sent %d times", n)
	}
}

// renewFails is a journal whose renewals never reach Redis.
type renewFails struct{ redisJournal }

func (renewFails) Renew(context.Context, []string, time.Time) error {
	return fmt.Errorf("redis: connection refused")
}

func TestAQueueDoesNotTakeItsOwnMessageTwice(t *testing.T) {
	_, j := outbox(t)
	// Sending takes a second; the lease runs out after 300 ms because no
	// renewal gets through, and the queue's own claims find the message.
	h := newHarness(t, smtpsink.Options{Delay: time.Second}, delivery.Config{Journal: renewFails{j}, Lease: 300 * time.Millisecond})
	e, err := h.dispatch(t, "dee@contoso.com", false)
	if err != nil {
		t.Fatal(err)
	}
	if r, events := h.final(t, e); r.Event != delivery.Delivered || fmt.Sprint(events) != "[queued delivered]" {
		t.Fatalf("report %+v, events %v", r, events)
	}
	if n := h.sink.Count("dee@contoso.com"); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}
