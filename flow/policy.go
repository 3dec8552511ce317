package flow

import (
	"errors"
	"fmt"
	"strings"
)

// Policy says which canonical addresses may sign in. Block beats allow.
type Policy struct {
	allow, block []rule
	inviteOnly   bool
}

// InviteOnly reports whether invitations alone admit (the allow list may be
// empty).
func (p Policy) InviteOnly() bool { return p.inviteOnly }

type ruleKind uint8

const (
	ruleEveryone  ruleKind = iota // *
	ruleAddress                   // alice@example.com
	ruleDomain                    // *@example.com: exactly that domain
	ruleSubdomain                 // *@*.example.com: any subdomain, not the domain itself
)

type rule struct {
	kind  ruleKind
	value string // address, or domain without the "*." part
}

// NewPolicy parses allow and block patterns: "*" (everyone), "*@example.com"
// (that domain), "*@*.example.com" (its subdomains) or a full address. An empty
// allow list is an error rather than "everyone", so a forgotten line can't open
// a tenant to the world, unless inviteOnly says that invitations alone admit.
func NewPolicy(allow, block []string, inviteOnly bool) (Policy, error) {
	if len(allow) == 0 && !inviteOnly {
		return Policy{}, errors.New("no one may sign in: add patterns such as '*@example.com' or 'alice@example.com', '*' for everyone, or invite_only to admit invited guests alone")
	}
	p := Policy{inviteOnly: inviteOnly}
	var err error
	if p.allow, err = parseRules(allow); err != nil {
		return Policy{}, err
	}
	if p.block, err = parseRules(block); err != nil {
		return Policy{}, err
	}
	return p, nil
}

func parseRules(patterns []string) ([]rule, error) {
	rules := make([]rule, 0, len(patterns))
	for _, pat := range patterns {
		r, err := parseRule(pat)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseRule(pattern string) (rule, error) {
	p := strings.ToLower(strings.TrimSpace(pattern))
	switch {
	case p == "*":
		return rule{kind: ruleEveryone}, nil
	case strings.HasPrefix(p, "*@*."):
		d, err := CanonicalDomain(p[len("*@*."):])
		if err != nil {
			return rule{}, fmt.Errorf("pattern %q: %v", pattern, err)
		}
		return rule{kind: ruleSubdomain, value: d}, nil
	case strings.HasPrefix(p, "*@"):
		d, err := CanonicalDomain(p[len("*@"):])
		if err != nil {
			return rule{}, fmt.Errorf("pattern %q: %v", pattern, err)
		}
		return rule{kind: ruleDomain, value: d}, nil
	}
	addr, err := ParseAddress(p)
	if err != nil || strings.Contains(p, "*") {
		return rule{}, fmt.Errorf("pattern %q: use '*', '*@example.com', '*@*.example.com' or a full address", pattern)
	}
	return rule{kind: ruleAddress, value: addr}, nil
}

// String is the rule as a pattern of the config.
func (r rule) String() string {
	switch r.kind {
	case ruleEveryone:
		return "*"
	case ruleSubdomain:
		return "*@*." + r.value
	case ruleDomain:
		return "*@" + r.value
	}
	return r.value
}

// Match returns the first allow and block patterns that match addr ("" for
// none): which line of the config decides.
func (p Policy) Match(addr string) (allowedBy, blockedBy string) {
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	for _, r := range p.allow {
		if r.matches(addr, domain) {
			allowedBy = r.String()
			break
		}
	}
	for _, r := range p.block {
		if r.matches(addr, domain) {
			blockedBy = r.String()
			break
		}
	}
	return allowedBy, blockedBy
}

func (r rule) matches(addr, domain string) bool {
	switch r.kind {
	case ruleEveryone:
		return true
	case ruleAddress:
		return addr == r.value
	case ruleDomain:
		return domain == r.value
	case ruleSubdomain:
		// The dot bound keeps evilexample.com out of *@*.example.com.
		return strings.HasSuffix(domain, "."+r.value)
	}
	return false
}

// Permits reports whether the canonical address addr may sign in by the
// lists alone: allowed and not blocked.
func (p Policy) Permits(addr string) bool { return p.Allowed(addr) && !p.Blocked(addr) }

// Allowed reports whether a pattern of the allow list matches addr.
func (p Policy) Allowed(addr string) bool { return anyMatch(p.allow, addr) }

// Blocked reports whether a pattern of the block list matches addr; block
// beats allow and invitations alike.
func (p Policy) Blocked(addr string) bool { return anyMatch(p.block, addr) }

func anyMatch(rules []rule, addr string) bool {
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	for _, r := range rules {
		if r.matches(addr, domain) {
			return true
		}
	}
	return false
}
