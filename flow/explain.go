package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// Explanation says why an address may or may not sign in to a tenant now,
// for the operator who hears "I never got a code".
type Explanation struct {
	Email string `json:"email"`
	// MayGetCodes: a real code would be sent (limits aside).
	MayGetCodes bool `json:"may_get_codes"`
	// Rule is the rule that decides, in the config's words.
	Rule string `json:"rule"`
	// Because is which rule decides, for pages that say it in the
	// reader's language: blocked, revoked, allowed, invited, invite_only or
	// not_allowed.
	Because   string `json:"because"`
	AllowedBy string `json:"allowed_by,omitempty"` // the allow pattern that matches
	BlockedBy string `json:"blocked_by,omitempty"` // the block pattern that matches
	// Guest is the directory's record: invitation, paths, status, last
	// sign-in. Nil for none.
	Guest *directory.Guest `json:"guest,omitempty"`
	// Holds are the limits holding codes to the address now, for a browser
	// it never signed in with (the owner's own browser has its own).
	Holds []Hold `json:"holds,omitempty"`
}

// Hold is one limit holding an address's codes.
type Hold struct {
	Limit string    `json:"limit"` // cooldown, per-address limit, backoff, lock, notme
	Until time.Time `json:"until"`
	Count int       `json:"count,omitempty"` // codes in the window, for the per-address limit
}

// Explain says which rule decides for addr on tenant, and which limits hold
// its codes, reading state without changing it.
func (s *Service) Explain(ctx context.Context, tenant, addr string) (Explanation, error) {
	now := s.cfg.Clock.Now()
	ex := Explanation{Email: addr}
	policy := s.policyOf(tenant)
	ex.AllowedBy, ex.BlockedBy = policy.Match(addr)
	g, err := s.cfg.Guests.Get(ctx, tenant, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
	case err != nil:
		return ex, fmt.Errorf("reading the guest directory: %w", err)
	default:
		ex.Guest = &g
	}
	invited := ex.Guest != nil && ex.Guest.Invitation(now)
	switch {
	case ex.BlockedBy != "":
		ex.Because, ex.Rule = "blocked", "blocked by the pattern "+ex.BlockedBy
	case ex.Guest != nil && ex.Guest.Status == directory.Revoked:
		ex.Because, ex.Rule = "revoked", "revoked by an admin"
	case ex.AllowedBy != "":
		ex.Because, ex.Rule, ex.MayGetCodes = "allowed", "allowed by the pattern "+ex.AllowedBy, true
	case invited:
		ex.Because, ex.Rule, ex.MayGetCodes = "invited", "invited", true
	case policy.InviteOnly():
		ex.Because, ex.Rule = "invite_only", "invite_only, and not invited (or the invitation expired)"
	default:
		ex.Because, ex.Rule = "not_allowed", "on no allow pattern, and not invited"
	}
	scope := IdentityTag(tenant, addr)
	for _, f := range []string{keyCooldown, keyBackoff, keyLock, keyNotMe} {
		until, up, err := s.cfg.Store.Flag(ctx, f+scope, now)
		if err != nil {
			return ex, err
		}
		if up {
			ex.Holds = append(ex.Holds, Hold{Limit: f[:len(f)-1], Until: until})
		}
	}
	if l := s.cfg.Limits.PerAddress; l.N > 0 {
		n, resets, err := s.cfg.Store.Peek(ctx, keySendAddr+scope, now)
		if err != nil {
			return ex, err
		}
		if n >= l.N {
			ex.Holds = append(ex.Holds, Hold{Limit: "per-address limit", Until: resets, Count: n})
		}
	}
	return ex, nil
}
