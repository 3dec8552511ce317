package memstore

import (
	"fmt"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// table holds each entry until its own expiry and never drops a live one to
// make room: when it is full of live entries a new key is refused with
// flow.ErrBusy. An LRU would instead let a flood of sends to other addresses
// push out the code a guest is typing, an address's send counter or a lock,
// which is what the flood is after.
type table[V any] struct {
	name    string // the Limits option that sizes it, for the error
	size    int
	entries map[string]held[V]
	// quietUntil is the earliest expiry the last full sweep left behind:
	// before it another sweep would free nothing, so a flood against a full
	// table costs a map lookup per request, not a scan.
	quietUntil time.Time
}

type held[V any] struct {
	value V
	until time.Time
}

func newTable[V any](name string, size int) *table[V] {
	return &table[V]{name: name, size: size, entries: make(map[string]held[V])}
}

// get returns key's value and expiry while it is live; an expired entry is
// dropped.
func (t *table[V]) get(key string, now time.Time) (V, time.Time, bool) {
	e, ok := t.entries[key]
	if ok && now.Before(e.until) {
		return e.value, e.until, true
	}
	if ok {
		delete(t.entries, key)
	}
	var zero V
	return zero, time.Time{}, false
}

// put keeps value under key until then. A key already held is replaced; a
// new one needs room, made only from expired entries.
func (t *table[V]) put(key string, value V, until, now time.Time) error {
	if _, ok := t.entries[key]; !ok && len(t.entries) >= t.size && !t.sweep(now) {
		return fmt.Errorf("%w: the memory store holds %d live entries, its %s; a flood fills it, and it refuses new ones until some expire rather than drop a guest's code, count or lock",
			flow.ErrBusy, t.size, t.name)
	}
	t.entries[key] = held[V]{value: value, until: until}
	if until.Before(t.quietUntil) {
		t.quietUntil = until
	}
	return nil
}

// sweep drops every expired entry and reports whether there is room now.
func (t *table[V]) sweep(now time.Time) bool {
	if now.Before(t.quietUntil) {
		return false
	}
	var earliest time.Time
	for k, e := range t.entries {
		if !now.Before(e.until) {
			delete(t.entries, k)
		} else if earliest.IsZero() || e.until.Before(earliest) {
			earliest = e.until
		}
	}
	t.quietUntil = earliest
	return len(t.entries) < t.size
}

func (t *table[V]) remove(key string) { delete(t.entries, key) }

func (t *table[V]) len() int { return len(t.entries) }
