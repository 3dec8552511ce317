package directory

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Query selects a page of a tenant's guests, in address order or by last
// sign-in. Every field is optional.
type Query struct {
	// Search matches part of the address, case-insensitively; "@contoso.com"
	// finds a domain.
	Search string
	Status Status
	// Source is "otp", "passkey", "oidc" (any provider) or "oidc:<name>".
	Source string
	// SignedInAfter and SignedInBefore bound the last sign-in; a guest who
	// never signed in is outside both.
	SignedInAfter, SignedInBefore *time.Time
	// Sort is the order: by address (SortAddress, the default) or by last
	// sign-in, newest first, those who never signed in last, then by
	// address (SortLastSignIn).
	Sort string
	// After is the cursor: the page before's Next. A page starts after the
	// last guest of the one before in the order, so a guest added or
	// removed meanwhile never moves another from one page to the next; a
	// guest who signs in meanwhile moves to the top.
	After string
	// Limit is the page's size: DefaultPage when 0, at most MaxPage.
	Limit int
}

// Orders of a page.
const (
	SortAddress    = "address"
	SortLastSignIn = "last_sign_in"
)

// Page sizes.
const (
	DefaultPage = 50
	MaxPage     = 500
)

// Page is one page of guests and the cursor of the next ("" for the last).
type Page struct {
	Guests []Guest `json:"guests"`
	Next   string  `json:"next,omitempty"`
}

// CheckQuery refuses what no page could answer.
func CheckQuery(q Query) error {
	switch q.Status {
	case "", Invited, Redeemed, Revoked:
	default:
		return fmt.Errorf("status %q: use invited, redeemed or revoked", q.Status)
	}
	if q.Limit < 0 || q.Limit > MaxPage {
		return fmt.Errorf("limit %d: use 1 to %d", q.Limit, MaxPage)
	}
	switch q.Sort {
	case "", SortAddress:
	case SortLastSignIn:
		if _, err := parseSignInCursor(q.After); err != nil {
			return err
		}
	default:
		return fmt.Errorf("sort %q: use address or last_sign_in", q.Sort)
	}
	return nil
}

// A last-sign-in cursor is the last guest's place in that order:
// "<UnixNano of the last sign-in, 0 for never> <address>".
func signInCursor(e entry) string { return strconv.FormatInt(e.lastSignIn, 10) + " " + e.email }

func parseSignInCursor(c string) (entry, error) {
	if c == "" {
		return entry{lastSignIn: math.MaxInt64}, nil // before everyone
	}
	ns, email, ok := strings.Cut(c, " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || n < 0 {
		return entry{}, fmt.Errorf("after %q: use the next cursor of the page before", c)
	}
	return entry{lastSignIn: n, email: email}, nil
}

// bySignIn reports whether a comes before b in the last-sign-in order.
func bySignIn(a, b entry) bool {
	if a.lastSignIn != b.lastSignIn {
		return a.lastSignIn > b.lastSignIn
	}
	return a.email < b.email
}

// Matches reports whether g is one of q's guests (the cursor aside).
func (q Query) Matches(g Guest) bool {
	switch {
	case q.Search != "" && !strings.Contains(g.Email, strings.ToLower(q.Search)):
		return false
	case q.Status != "" && g.Status != q.Status:
		return false
	case q.Source == "oidc" && !strings.HasPrefix(g.Source, "oidc:"):
		return false
	case q.Source != "" && q.Source != "oidc" && g.Source != q.Source:
		return false
	case q.SignedInAfter != nil && (g.LastSignIn == nil || !g.LastSignIn.After(*q.SignedInAfter)):
		return false
	case q.SignedInBefore != nil && (g.LastSignIn == nil || !g.LastSignIn.Before(*q.SignedInBefore)):
		return false
	}
	return true
}

// Find returns the page of tenant's guests that q asks for. It reads the
// index and the page's records: what it returns is what the records say.
func (d *Directory) Find(ctx context.Context, tenant string, q Query) (Page, error) {
	if err := CheckQuery(q); err != nil {
		return Page{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultPage
	}
	shards, err := d.readIndex(ctx, tenant)
	if err != nil {
		return Page{}, err
	}
	next := candidates(shards, q)
	page := Page{Guests: []Guest{}}
	var last entry
	for e, ok := next(); ok; e, ok = next() {
		g, err := d.load(ctx, key(tenant, e.email))
		if errors.Is(err, ErrNotFound) {
			continue // removed, or its creation never finished
		}
		if err != nil {
			return Page{}, err
		}
		if !q.Matches(g) {
			continue // a pending entry whose change is under way
		}
		if len(page.Guests) == limit {
			page.Next = last.email
			if q.Sort == SortLastSignIn {
				page.Next = signInCursor(last)
			}
			break
		}
		page.Guests, last = append(page.Guests, g), e
	}
	return page, nil
}

// candidates yields the entries that may be on q's page, in q's order,
// after its cursor (which CheckQuery has read).
func candidates(shards [][]entry, q Query) (next func() (entry, bool)) {
	if q.Sort == SortLastSignIn {
		after, _ := parseSignInCursor(q.After)
		// The page's worth of candidates at a time, plus a few for those
		// whose records say otherwise: a pass over the entries keeps the
		// best few, never all of them in order.
		n := cmp.Or(q.Limit, DefaultPage) + 16
		best, more := topBySignIn(shards, q, after, n)
		return func() (entry, bool) {
			if len(best) == 0 && more {
				best, more = topBySignIn(shards, q, after, n)
			}
			if len(best) == 0 {
				return entry{}, false
			}
			after, best = best[0], best[1:]
			return after, true
		}
	}
	// Each shard's candidates, still in address order; the merge then only
	// orders those.
	heads := make(headHeap, 0, len(shards))
	for _, entries := range shards {
		var mine []entry
		for _, e := range entries {
			if e.email > q.After && e.matches(q) {
				mine = append(mine, e)
			}
		}
		if len(mine) > 0 {
			heads = append(heads, mine)
		}
	}
	heap.Init(&heads)
	return func() (entry, bool) {
		if heads.Len() == 0 {
			return entry{}, false
		}
		e := heads[0][0]
		if heads[0] = heads[0][1:]; len(heads[0]) == 0 {
			heap.Pop(&heads)
		} else {
			heap.Fix(&heads, 0)
		}
		return e, true
	}
}

// topBySignIn is the first n of q's candidates after the cursor in the
// last-sign-in order, in that order; more says whether others follow.
func topBySignIn(shards [][]entry, q Query, after entry, n int) (best []entry, more bool) {
	worst := &worstFirst{}
	for _, entries := range shards {
		for _, e := range entries {
			switch {
			case !bySignIn(after, e) || !e.matches(q):
			case worst.Len() < n:
				heap.Push(worst, e)
			case bySignIn(e, (*worst)[0]):
				(*worst)[0], more = e, true
				heap.Fix(worst, 0)
			default:
				more = true
			}
		}
	}
	best = make([]entry, worst.Len())
	for i := len(best) - 1; i >= 0; i-- {
		best[i] = heap.Pop(worst).(entry)
	}
	return best, more
}

// worstFirst is a heap of entries with the last in the last-sign-in order
// on top.
type worstFirst []entry

func (h worstFirst) Len() int           { return len(h) }
func (h worstFirst) Less(i, j int) bool { return bySignIn(h[j], h[i]) }
func (h worstFirst) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *worstFirst) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *worstFirst) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// headHeap merges the shards: each element is the rest of one shard, and
// the smallest next address is on top.
type headHeap [][]entry

func (h headHeap) Len() int           { return len(h) }
func (h headHeap) Less(i, j int) bool { return h[i][0].email < h[j][0].email }
func (h headHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *headHeap) Push(x any)        { *h = append(*h, x.([]entry)) }
func (h *headHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
