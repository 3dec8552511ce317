// Package devmail is the development flow.Mailer: it delivers nothing, logs each
// message, and keeps the latest ones in a bounded outbox that the gateway shows
// to loopback clients, so a demo works without a mail server.
package devmail

import (
	"context"
	"sync"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Entry is one message in the outbox.
type Entry struct {
	flow.Message
	At time.Time
}

// Outbox keeps the last Capacity messages, newest first.
type Outbox struct {
	mu       sync.Mutex
	entries  []Entry // ring, oldest overwritten
	next     int
	capacity int
	// OnSend is called for every message, e.g. to log it; may be nil.
	OnSend func(flow.Message)
}

// New returns an outbox that keeps up to capacity messages (default 100).
func New(capacity int) *Outbox {
	if capacity <= 0 {
		capacity = 100
	}
	return &Outbox{capacity: capacity}
}

// Send implements flow.Mailer.
func (o *Outbox) Send(_ context.Context, m flow.Message) error {
	o.mu.Lock()
	e := Entry{Message: m, At: time.Now()}
	if len(o.entries) < o.capacity {
		o.entries = append(o.entries, e)
	} else {
		o.entries[o.next] = e
	}
	o.next = (o.next + 1) % o.capacity
	onSend := o.OnSend
	o.mu.Unlock()
	if onSend != nil {
		onSend(m)
	}
	return nil
}

// Messages returns the kept messages, newest first.
func (o *Outbox) Messages() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(o.entries))
	for i := 1; i <= len(o.entries); i++ {
		out = append(out, o.entries[(o.next-i+len(o.entries))%len(o.entries)])
	}
	return out
}

var _ flow.Mailer = (*Outbox)(nil)
