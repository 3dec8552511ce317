package emailotp

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// recentMail keeps, per tenant and address, the mailer's last answers about
// their code emails, for the "why can't this guest get in?" trace. Kept in
// this process's memory only; never logged.
var recentMail = newMailHistory(10_000)

type mailHistory struct {
	mu    sync.Mutex
	cache *lru.Cache[string, []mailerAnswer]
}

func newMailHistory(size int) *mailHistory {
	c, _ := lru.New[string, []mailerAnswer](size)
	return &mailHistory{cache: c}
}

// add keeps the newest three answers for an address.
func (h *mailHistory) add(tenant, addr string, a mailerAnswer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := tenant + "\x00" + addr
	prev, _ := h.cache.Get(key)
	h.cache.Add(key, append([]mailerAnswer{a}, prev[:min(len(prev), 2)]...))
}

func (h *mailHistory) of(tenant, addr string) []mailerAnswer {
	h.mu.Lock()
	defer h.mu.Unlock()
	got, _ := h.cache.Get(tenant + "\x00" + addr)
	return got
}
