package directory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Query selects a page of a tenant's guests, in address order. Every field
// is optional.
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
	// After is the cursor: the last address of the page before. Pages are
	// in address order, so a guest added or removed meanwhile never moves
	// another from one page to the next.
	After string
	// Limit is the page's size: DefaultPage when 0, at most MaxPage.
	Limit int
}

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
	return nil
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
	// Each shard's candidates, still in address order; the merge below
	// then only orders those.
	heads := make(headHeap, 0, len(shards))
	for _, entries := range shards {
		var candidates []entry
		for _, e := range entries {
			if e.email > q.After && e.matches(q) {
				candidates = append(candidates, e)
			}
		}
		if len(candidates) > 0 {
			heads = append(heads, candidates)
		}
	}
	heap.Init(&heads)
	page := Page{Guests: []Guest{}}
	for heads.Len() > 0 {
		e := heads[0][0]
		if heads[0] = heads[0][1:]; len(heads[0]) == 0 {
			heap.Pop(&heads)
		} else {
			heap.Fix(&heads, 0)
		}
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
			page.Next = page.Guests[len(page.Guests)-1].Email
			break
		}
		page.Guests = append(page.Guests, g)
	}
	return page, nil
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
