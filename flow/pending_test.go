package flow

import (
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
	if after.Nonce == p.Nonce || after.Email != "eve@x.example" || after.Challenge != "" || after.RD != "" || after.Held != nil {
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
