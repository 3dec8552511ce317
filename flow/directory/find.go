package directory

import (
	"context"
	"fmt"
	"slices"
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

// Find returns the page of tenant's guests that q asks for.
func (d *Directory) Find(ctx context.Context, tenant string, q Query) (Page, error) {
	if err := CheckQuery(q); err != nil {
		return Page{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultPage
	}
	all, err := d.List(ctx, tenant)
	if err != nil {
		return Page{}, err
	}
	start, _ := slices.BinarySearchFunc(all, q.After, func(g Guest, after string) int {
		if strings.Compare(g.Email, after) <= 0 {
			return -1
		}
		return 1
	})
	page := Page{Guests: []Guest{}}
	for _, g := range all[start:] {
		if !q.Matches(g) {
			continue
		}
		if len(page.Guests) == limit {
			page.Next = page.Guests[len(page.Guests)-1].Email
			break
		}
		page.Guests = append(page.Guests, g)
	}
	return page, nil
}
