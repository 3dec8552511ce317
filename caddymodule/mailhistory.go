package emailotp

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// recentMail keeps, per tenant and address, the mailer's last answers about
// their code emails, for the "why can't this guest get in?" trace.
var recentMail = newRecentPerGuest[mailerAnswer](10_000, 3)

// guestEvents keeps, per tenant and address, the last steps the audit log
// got about them (sign-in steps, deliveries, admins' changes), for the
// guest's console page.
var guestEvents = newRecentPerGuest[guestEvent](10_000, 20)

// guestEvent is one audit step about a guest.
type guestEvent struct {
	At     time.Time
	Step   string // code_sent, verified, revoked, …
	Reason string // which limit, which provider; "" for most
	By     string // the console's admin who made the change; "" otherwise
}

// recentPerGuest keeps the newest few values per tenant key and address,
// for at most size addresses. It lives in this process's memory only (each
// node knows what it saw) and is never logged.
type recentPerGuest[T any] struct {
	mu    sync.Mutex
	cache *lru.Cache[string, []T]
	keep  int
}

func newRecentPerGuest[T any](size, keep int) *recentPerGuest[T] {
	c, _ := lru.New[string, []T](size)
	return &recentPerGuest[T]{cache: c, keep: keep}
}

// add keeps v as the newest for the address.
func (h *recentPerGuest[T]) add(tenant, addr string, v T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := tenant + "\x00" + addr
	prev, _ := h.cache.Get(key)
	h.cache.Add(key, append([]T{v}, prev[:min(len(prev), h.keep-1)]...))
}

// of is the address's values, newest first.
func (h *recentPerGuest[T]) of(tenant, addr string) []T {
	h.mu.Lock()
	defer h.mu.Unlock()
	got, _ := h.cache.Get(tenant + "\x00" + addr)
	return got
}
