package flow

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Rate is N events per Window; N = 0 means no limit.
type Rate struct {
	N      int
	Window time.Duration
}

// Limits bound sending and guessing. Zero values turn a limit off.
type Limits struct {
	PerAddress Rate // codes per tenant and address
	PerIP      Rate // codes per client IPv4 address or IPv6 /64
	PerTenant  Rate // codes per tenant
	// Cooldown between two codes for one tenant and address.
	Cooldown time.Duration
	// After each dead code (MaxAttempts wrong tries), no new code for
	// BackoffBase, doubling with each further dead code up to BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// LockAfter consecutive wrong tries (within LockFor) stop codes to the
	// address for LockFor (NIST 800-63B 5.2.2: at most 100).
	LockAfter int
	LockFor   time.Duration
	// NotMeFor is how long codes stop after a guest reports "this wasn't me".
	NotMeFor time.Duration
}

// limitScope is what the limits about an address count and hold: the
// identity tag for a browser in which the address never signed in (any
// stranger's), or the tag and the device for one in which it did. A
// stranger who knows an address can then use up the strangers' quota, or
// set off back-off and lock with wrong codes, and the owner still signs in
// from a browser they used before. The marker proves nothing about identity:
// it only keeps the owner's quota apart from strangers'.
func limitScope(tag string, req SendRequest) string {
	for _, d := range req.Devices {
		if d.ID != "" && slices.Contains(d.Tags, tag) {
			return tag + ":" + d.ID
		}
	}
	return tag
}

// checkLimits applies the sending limits. Limits about the client or the
// tenant are errors (a page that says nothing about the address); limits
// about the address hold the send quietly. All are counted before the
// policy is asked, so they fall alike on every address.
func (s *Service) checkLimits(ctx context.Context, req SendRequest, tag, scope string, now time.Time) (time.Time, string, error) {
	l := s.cfg.Limits
	loud := []struct {
		rate       Rate
		key, scope string
		applies    bool
	}{
		{l.PerIP, keySendIP + clientNetwork(req.ClientIP), "client IP", req.ClientIP != ""},
		{l.PerTenant, keySendTenant + req.Tenant, "tenant", true},
	}
	for _, c := range loud {
		if c.rate.N <= 0 || !c.applies {
			continue
		}
		n, resets, err := s.cfg.Store.Count(ctx, c.key, c.rate.Window, now)
		if err != nil {
			return time.Time{}, "", err
		}
		if n > c.rate.N {
			return time.Time{}, "", RateLimitError{Scope: c.scope, Until: resets}
		}
	}
	// Holds, in the order they are named to the guest; one question to
	// the store.
	holds := []string{keyNotMe, keyLock, keyBackoff, keyCooldown}
	if scope != tag {
		holds = holds[1:] // "this wasn't me" stops strangers' codes, not the owner's browser
	}
	keys := make([]string, len(holds))
	for i, f := range holds {
		keys[i] = f + scope
	}
	i, until, err := s.cfg.Store.FirstFlag(ctx, keys, now)
	if err != nil {
		return time.Time{}, "", err
	}
	if i >= 0 {
		return until, strings.TrimSuffix(holds[i], ":"), nil
	}
	if l.PerAddress.N > 0 {
		n, resets, err := s.cfg.Store.Count(ctx, keySendAddr+scope, l.PerAddress.Window, now)
		if err != nil {
			return time.Time{}, "", err
		}
		if n > l.PerAddress.N {
			return resets, "per-address limit", nil
		}
	}
	return time.Time{}, "", nil
}

// countFailure records a wrong try against the guest across codes: a dead
// code starts a back-off, doubling with each; LockAfter in a row lock the
// address for LockFor.
func (s *Service) countFailure(ctx context.Context, ch Challenge, dead bool, now time.Time) error {
	l := s.cfg.Limits
	if l.LockAfter <= 0 {
		return nil
	}
	scope := ch.Scope
	if scope == "" {
		scope = IdentityTag(ch.Tenant, ch.Email)
	}
	n, _, err := s.cfg.Store.Count(ctx, keyFail+scope, l.LockFor, now)
	if err != nil {
		return err
	}
	if n >= l.LockAfter {
		return s.cfg.Store.SetFlag(ctx, keyLock+scope, now.Add(l.LockFor))
	}
	if dead && l.BackoffBase > 0 {
		wait := l.BackoffBase
		for k := n / max(ch.MaxAttempts, 1); k > 1 && wait < l.BackoffMax; k-- {
			wait *= 2
		}
		if l.BackoffMax > 0 {
			wait = min(wait, l.BackoffMax)
		}
		return s.cfg.Store.SetFlag(ctx, keyBackoff+scope, now.Add(wait))
	}
	return nil
}
