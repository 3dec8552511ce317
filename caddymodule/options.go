package emailotp

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/hygiene"
	"github.com/otpgate/caddy-email-otp/internal/textcheck"
)

// applyDefaults fills every option left unset with its default.
func (g *Gateway) applyDefaults() {
	if g.Tenant == nil {
		g.Tenant = &TenantConfig{}
	}
	if g.Tenant.From == "" {
		g.Tenant.From = TenantFromHost
	}
	if g.Tenant.From == TenantFromPath && g.Tenant.Prefix == "" {
		g.Tenant.Prefix = defaultPathPrefix
	}
	if g.CodeTTL == 0 {
		g.CodeTTL = caddy.Duration(DefaultCodeTTL)
	}
	if g.SessionTTL == 0 {
		g.SessionTTL = caddy.Duration(DefaultSessionTTL)
	}
	if g.CodeLength == 0 {
		g.CodeLength = DefaultCodeLength
	}
	if g.MaxAttempts == 0 {
		g.MaxAttempts = DefaultMaxAttempts
	}
	if g.Headers == nil {
		g.Headers = &HeaderNames{}
	}
	if g.Limits == nil {
		g.Limits = &LimitsConfig{}
	}
	g.Limits.applyDefaults()
	g.Headers.applyDefaults()
}

// parsedOptions are the options that checking them parses.
type parsedOptions struct {
	policy  flow.Policy
	baseURL *url.URL // nil: links use the request's origin
}

// checkOptions reports the first wrong option by its Caddyfile name, and
// returns the options it had to parse to check.
func (g *Gateway) checkOptions() (parsedOptions, error) {
	var opts parsedOptions
	var err error
	switch g.Tenant.From {
	case TenantFromHost:
	case TenantFromStatic:
		if g.Tenant.Name == "" || !validTenantSegment(g.Tenant.Name) {
			return opts, fmt.Errorf("tenant static: name %q must be letters, digits, '-', '_' or '.'", g.Tenant.Name)
		}
	case TenantFromPath:
		p := g.Tenant.Prefix
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || !isCleanPath(p) {
			return opts, fmt.Errorf("tenant path: prefix %q must start and end with '/', like /t/", p)
		}
	default:
		return opts, fmt.Errorf("tenant %q: use host, path [/prefix/] or static NAME", g.Tenant.From)
	}
	if c := g.Console; c != nil {
		p := strings.TrimSuffix(c.Path, "/")
		switch {
		case !strings.HasPrefix(p, "/") || !isCleanPath(p+"/") || strings.Contains(p, reservedSegment):
			return opts, fmt.Errorf("console %q: use a clean path such as /admin", c.Path)
		case g.Tenant.From == TenantFromPath && strings.HasPrefix(p+"/", g.Tenant.Prefix):
			return opts, fmt.Errorf("console %q: it is inside the tenants' prefix %s; pick a path outside it, such as /admin", c.Path, g.Tenant.Prefix)
		}
	}
	if ns := g.Tenant.Namespace; ns != "" && !validTenantSegment(ns) {
		return opts, fmt.Errorf("namespace %q: use letters, digits, '-', '_' or '.'", ns)
	}
	if g.CodeTTL <= 0 {
		return opts, errors.New("code_ttl: must be a positive duration, like 30m")
	}
	if g.SessionTTL <= 0 {
		return opts, errors.New("session_ttl: must be a positive duration, like 24h")
	}
	if err := flow.CheckCodeLength(g.CodeLength); err != nil {
		return opts, fmt.Errorf("code_length %d: %w", g.CodeLength, err)
	}
	if err := flow.CheckMaxAttempts(g.MaxAttempts); err != nil {
		return opts, fmt.Errorf("max_attempts %d: %w", g.MaxAttempts, err)
	}
	if err := g.Limits.check(); err != nil {
		return opts, err
	}
	if opts.policy, err = flow.NewPolicy(g.Allow, g.Block, g.InviteOnly); err != nil {
		return opts, fmt.Errorf("allow/block: %w", err)
	}
	if opts.baseURL, err = parseBaseURL(g.BaseURL); err != nil {
		return opts, err
	}
	if err := g.Assertion.check(); err != nil {
		return opts, err
	}
	if err := checkDisplayName("display_name", g.DisplayName); err != nil {
		return opts, err
	}
	for id, n := range g.DisplayNames {
		if err := checkDisplayName("display_name "+id, n); err != nil {
			return opts, err
		}
	}
	if err := g.Branding.check("branding"); err != nil {
		return opts, err
	}
	for id, b := range g.Brandings {
		if err := b.check("branding " + id); err != nil {
			return opts, err
		}
	}
	for _, h := range g.Headers.all() {
		if !hygiene.ValidHeaderName(h) {
			return opts, fmt.Errorf("headers: %q is not a valid header name", h)
		}
	}
	return opts, nil
}

// checkDisplayName refuses a tenant name that could not be shown as one
// plain line: it goes into every page's heading and every email's subject
// and body, where a right-to-left override (U+202E) would make it read
// differently from how it is written.
func checkDisplayName(option, name string) error {
	if textcheck.HasControl(name) {
		return fmt.Errorf("%s %q: holds a line break, a control character or a bidirectional override (U+202A–U+202E, U+2066–U+2069); write the name as plain text", option, name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%s: is not valid UTF-8", option)
	}
	return nil
}
