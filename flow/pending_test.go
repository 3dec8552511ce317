package flow

import (
	"reflect"
	"testing"
	"time"
)

func TestPendingTransitions(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	p := NewPending()
	if p.Nonce == "" || p.Waiting(now) {
		t.Fatalf("new: %+v", p)
	}
	// A send: the browser waits for its challenge.
	ch := Challenge{ID: "c1", Email: "bob@x.example"}
	p.Sent(SendResult{Challenge: ch, Email: ch.Email}, "/doc")
	if p.Challenge != "c1" || p.Email != "bob@x.example" || p.RD != "/doc" || !p.Waiting(now) {
		t.Fatalf("after a send: %+v", p)
	}
	// A held send for the same address keeps the challenge; the hold ends.
	p.Sent(SendResult{Email: "bob@x.example", Held: now.Add(time.Minute)}, "/doc")
	if p.Challenge != "c1" || !p.HeldAt(now) || p.HeldAt(now.Add(time.Minute)) {
		t.Fatalf("after a held send: %+v", p)
	}
	// A held send for another address drops it, but the browser still waits.
	p.Sent(SendResult{Email: "eve@x.example", Held: now.Add(time.Minute)}, "/doc")
	if p.Challenge != "" || p.Email != "eve@x.example" || !p.Waiting(now) || p.Waiting(now.Add(time.Minute)) {
		t.Fatalf("after a held send for another address: %+v", p)
	}
	// A verified code waiting for consent, for this tenant, until it expires.
	s := Session{ID: "s", Tenant: "acme", Email: "eve@x.example", ExpiresAt: now.Add(time.Hour).Unix()}
	p.AwaitConsent(s)
	if got, ok := p.Consenting("acme", now); !ok || got != s || p.Challenge != "" {
		t.Fatalf("consenting: %+v %v", got, ok)
	}
	if _, ok := p.Consenting("globex", now); ok {
		t.Error("another tenant's consent")
	}
	if _, ok := p.Consenting("acme", now.Add(time.Hour)); ok {
		t.Error("an expired session waits for consent")
	}
	p.Decline()
	if _, ok := p.Consenting("acme", now); ok {
		t.Error("declined, still waiting")
	}
	// Signed in: a fresh nonce, nothing but the address carried over.
	after := p.SignedIn("eve@x.example")
	if after.Nonce == p.Nonce || after.Email != "eve@x.example" || after.Challenge != "" || after.RD != p.RD || after.Held != nil {
		t.Fatalf("after sign-in: %+v", after)
	}
	// The sign-in page again abandons the challenge and any held session.
	p.Sent(SendResult{Challenge: ch, Email: ch.Email}, "/doc")
	p.AwaitConsent(s)
	p.Restart()
	if p.Challenge != "" || p.Held != nil || p.Email == "" {
		t.Fatalf("after restart: %+v", p)
	}
}

func TestCodeScreen(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	live := Challenge{ID: "c1", Delivery: DeliveryRetrying, MaxAttempts: 5}
	held := Pending{Challenge: "", HeldUntil: now.Add(time.Minute).Unix()}
	for name, tc := range map[string]struct {
		p     Pending
		ch    Challenge
		found bool
		now   time.Time
		want  Screen
	}{
		"its code":             {Pending{Challenge: "c1"}, live, true, now, Screen{Step: StepEnterCode, Challenge: live}},
		"its code is gone":     {Pending{Challenge: "c1"}, Challenge{}, false, now, Screen{Step: StepSignIn, Notice: NoticeExpired}},
		"never asked":          {Pending{}, Challenge{}, false, now, Screen{Step: StepSignIn}},
		"held looks sent":      {held, Challenge{}, false, now, Screen{Step: StepEnterCode, Challenge: heldLookAlike}},
		"hold over, never had": {held, Challenge{}, false, now.Add(time.Minute), Screen{Step: StepSignIn}},
	} {
		if got := tc.p.CodeScreen(tc.ch, tc.found, tc.now); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
	if heldLookAlike.Delivery != DeliverySent || heldLookAlike.TriesLeft() < 1 {
		t.Errorf("a held send must look like a sent code: %+v", heldLookAlike)
	}
}

func TestAfterVerify(t *testing.T) {
	s := Session{ID: "s", Tenant: "acme", Email: "eve@x.example", ExpiresAt: 1 << 40}
	ch := Challenge{ID: "c1", Attempts: 1, MaxAttempts: 5}
	for name, tc := range map[string]struct {
		res      VerifyResult
		want     Screen
		consents bool
	}{
		"right":         {VerifyResult{Outcome: Verified, Session: s}, Screen{Step: StepSession}, false},
		"right+consent": {VerifyResult{Outcome: Verified, Session: s, NeedsConsent: true}, Screen{Step: StepConsent}, true},
		"wrong":         {VerifyResult{Outcome: WrongCode, Challenge: ch}, Screen{Step: StepEnterCode, Challenge: ch}, false},
		"malformed":     {VerifyResult{Outcome: Malformed, Challenge: ch}, Screen{Step: StepEnterCode, Challenge: ch}, false},
		"locked":        {VerifyResult{Outcome: Locked}, Screen{Step: StepSignIn, Notice: NoticeLocked}, false},
		"expired":       {VerifyResult{Outcome: Expired}, Screen{Step: StepSignIn, Notice: NoticeExpired}, false},
	} {
		p := Pending{Nonce: "n", Challenge: "c1"}
		if got := p.AfterVerify(tc.res); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
		if _, ok := p.Consenting("acme", time.Unix(0, 0)); ok != tc.consents {
			t.Errorf("%s: holds a session for consent: %v", name, ok)
		}
	}
	if ParseNotice("locked") != NoticeLocked || ParseNotice("<script>") != NoticeNone {
		t.Error("ParseNotice")
	}
}

func TestDeliveryViewHidesQueuedFromSent(t *testing.T) {
	for d, want := range map[DeliveryState]DeliveryView{
		DeliveryQueued: ViewOnItsWay, DeliverySent: ViewOnItsWay, DeliveryRetrying: ViewRetrying, DeliveryFailed: ViewFailed,
	} {
		if got := d.View(); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}
