package emailotp

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// anyTenant is the pattern that admits every tenant.
const anyTenant = "*"

// errUnknownTenant: the request names a tenant this gateway does not serve.
// It is answered 404 before anything is stored or mailed.
var errUnknownTenant = errors.New("no such tenant")

// tenantSet is which tenants a gateway serves. A tenant's id is chosen by
// whoever writes the link (a path segment, a Host header), and it reaches the
// pages and the code email as the tenant's name and in its links: so only
// tenants the operator declared are served. A tenant named exactly (in
// tenants, display_name or branding, or a site address) keeps its own name
// and links; one that only a pattern admits ("team-*", "*") is a stranger's
// choice, so its pages and emails use the configured display_name and its
// emails carry no link and no one-time-code line.
type tenantSet struct {
	named    map[string]bool
	patterns []string
}

// newTenantSet is the set of a gateway: the tenants option, the tenants that
// have a name or look of their own, and in host mode without a tenants
// option the host names of the site's addresses.
func newTenantSet(g *Gateway, siteHosts []string) tenantSet {
	s := tenantSet{named: map[string]bool{}}
	add := func(id string) {
		if g.Tenant.From == TenantFromHost {
			id = strings.ToLower(id)
		}
		if strings.Contains(id, "*") {
			s.patterns = append(s.patterns, id)
		} else {
			s.named[id] = true
		}
	}
	for _, id := range g.Tenants {
		add(id)
	}
	for id := range maps.Keys(g.DisplayNames) {
		add(id)
	}
	for id := range maps.Keys(g.Brandings) {
		add(id)
	}
	switch g.Tenant.From {
	case TenantFromStatic:
		s.named[g.Tenant.Name] = true
	case TenantFromHost:
		if len(g.Tenants) == 0 {
			for _, h := range siteHosts {
				add(h)
			}
		}
	}
	return s
}

// check refuses a set that serves nothing, and patterns without the name
// their tenants' pages and emails use instead of their ids.
func (s tenantSet) check(g *Gateway) error {
	if len(s.named) == 0 && len(s.patterns) == 0 {
		if g.Tenant.From == TenantFromHost {
			return errors.New("tenant host: this site's addresses name no host (a catch-all such as :443 or http://, or a wildcard): " +
				"list the hosts this gateway serves, like tenants contoso.example.com fabrikam.example.com")
		}
		return errors.New("tenant path: list the tenants this gateway serves, like tenants acme globex (patterns like team-* too); " +
			"a tenant with a display_name or branding of its own is served as well")
	}
	if len(s.patterns) > 0 && g.DisplayName == "" {
		return fmt.Errorf("tenants %s: a pattern lets whoever writes a link choose the tenant's id, so it is never shown to guests: "+
			"set display_name, the name pages and emails give such tenants", strings.Join(s.patterns, " "))
	}
	for _, p := range s.patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("tenants %q: not a pattern (use * for any run of characters)", p)
		}
	}
	return nil
}

// admit reports whether the set serves tenant id, and whether the config
// names it exactly.
func (s tenantSet) admit(id string) (served, named bool) {
	if s.named[id] {
		return true, true
	}
	for _, p := range s.patterns {
		if ok, _ := path.Match(p, id); ok {
			return true, false
		}
	}
	return false, false
}

// open reports whether the set admits any tenant at all.
func (s tenantSet) open() bool { return slices.Contains(s.patterns, anyTenant) }

// site is what a gateway learns at load about the server it is part of.
type site struct {
	// hosts are the host names its routes match exactly: a Caddyfile's
	// site addresses. Wildcards and placeholders are left out: they let
	// the client choose the name.
	hosts []string
	// plainHTTP: the server has no TLS (a proxy in front may end it).
	plainHTTP bool
}

// siteOf reads the server being provisioned (Caddy puts it in the
// context); a zero site when there is none.
func siteOf(ctx caddy.Context) site {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return site{}
	}
	s := site{plainHTTP: len(srv.TLSConnPolicies) == 0}
	for _, route := range srv.Routes {
		for _, set := range route.MatcherSets {
			for _, m := range set {
				var names caddyhttp.MatchHost
				switch m := m.(type) {
				case caddyhttp.MatchHost:
					names = m
				case *caddyhttp.MatchHost:
					names = *m
				}
				for _, h := range names {
					if !strings.ContainsAny(h, "*{}") {
						s.hosts = append(s.hosts, canonicalHost(h))
					}
				}
			}
		}
	}
	return s
}

// siblingsShareCookies reports whether host tenants of s may set cookies
// for one another: on plain HTTP nothing keeps a page on one host from
// setting a cookie for a parent domain that the other hosts receive. Names
// under .localhost are left out: they are this machine's own.
func (s tenantSet) siblingsShareCookies(from string, st site) bool {
	if from != TenantFromHost || !st.plainHTTP {
		return false
	}
	for id := range s.named {
		if id != "localhost" && !strings.HasSuffix(id, ".localhost") {
			return true
		}
	}
	return len(s.patterns) > 0
}
