package directory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// Pages follow the cursor in address order, each filter narrows, and a
// guest added before the cursor while paging neither repeats nor hides
// another.
func TestFindPagesAndFilters(t *testing.T) {
	ctx := context.Background()
	d := New(&certmagic.FileStorage{Path: t.TempDir()}, 100, time.Minute)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := range 7 {
		email := fmt.Sprintf("g%d@%s", i, map[bool]string{true: "contoso.com", false: "fabrikam.com"}[i%2 == 0])
		source := map[bool]string{true: SourceOTP, false: "oidc:fabrikam"}[i%2 == 0]
		if _, err := d.RecordSignIn(ctx, "acme", email, source, now.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := d.Find(ctx, "acme", Query{Limit: 3})
	if err != nil || len(page.Guests) != 3 || page.Guests[0].Email != "g0@contoso.com" || page.Next != "g2@contoso.com" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	// A guest who sorts before the cursor arrives meanwhile.
	if _, err := d.RecordSignIn(ctx, "acme", "a@contoso.com", SourceOTP, now); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for q := (Query{Limit: 3, After: page.Next}); ; {
		p, err := d.Find(ctx, "acme", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range p.Guests {
			seen = append(seen, g.Email)
		}
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if fmt.Sprint(seen) != "[g3@fabrikam.com g4@contoso.com g5@fabrikam.com g6@contoso.com]" {
		t.Errorf("the pages after the first: %v", seen)
	}
	after := now.Add(3 * time.Hour)
	for name, tc := range map[string]struct {
		q    Query
		want int
	}{
		"domain":         {Query{Search: "@Fabrikam.com"}, 3},
		"source oidc":    {Query{Source: "oidc"}, 3},
		"source exact":   {Query{Source: "oidc:fabrikam"}, 3},
		"source otp":     {Query{Source: SourceOTP}, 5},
		"signed in late": {Query{SignedInAfter: &after}, 3},
		"status":         {Query{Status: Invited}, 0},
	} {
		p, err := d.Find(ctx, "acme", tc.q)
		if err != nil || len(p.Guests) != tc.want {
			t.Errorf("%s: %d guests (%v), want %d", name, len(p.Guests), err, tc.want)
		}
	}
	if _, err := d.Find(ctx, "acme", Query{Status: "gone"}); err == nil {
		t.Error("an unknown status was taken")
	}
}
