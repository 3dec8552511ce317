package emailotp

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/textcheck"
)

// Tenant sources.
const (
	TenantFromHost   = "host"
	TenantFromPath   = "path"
	TenantFromStatic = "static"
)

// TenantConfig says where a request's tenant comes from.
type TenantConfig struct {
	// "host": the request's host name; "path": the first path segment after
	// Prefix; "static": always Name. Default: host.
	From string `json:"from,omitempty"`
	// For path tenants, the path before the tenant segment. Default: /t/.
	Prefix string `json:"prefix,omitempty"`
	// For static tenants, the tenant id. Required with from static.
	Name string `json:"name,omitempty"`
	// Keeps this gateway's tenants apart from other gateways' tenants of the
	// same ids and mode (another site with its own audience): sessions,
	// codes and guest records of one namespace mean nothing in another.
	// Letters, digits, '-', '_' and '.'. Default: none (tenants of one mode
	// and id are one tenant on every site of the process or cluster).
	Namespace string `json:"namespace,omitempty"`
}

// tenant is the tenant context of one request.
type tenant struct {
	// Key is the tenant's key: what sessions, codes, limits and guest records
	// are bound to, with the mode (and namespace) in it, so the path tenant
	// "contoso.example" is not the host tenant (see directory.TenantKey).
	Key string
	// ID is the bare tenant id that backends, pages and metrics see.
	ID   string
	Root string // the tenant's path root: "/" or "/t/acme/"
	// Named: the config names this tenant exactly (see tenantSet); false
	// for one only a pattern admits, whose id a stranger may have chosen.
	Named bool
}

// newTenant is the tenant of id under root, keyed for this config.
func (c TenantConfig) newTenant(id, root string) tenant {
	return tenant{Key: directory.TenantKey(c.Namespace, c.From, id), ID: id, Root: root}
}

// rootOf is the path root of the tenant id: its prefix and segment for
// path tenants, "/" for the others.
func (c TenantConfig) rootOf(id string) string {
	if c.From == TenantFromPath {
		return c.Prefix + id + "/"
	}
	return "/"
}

// Base is the prefix of the gateway's own endpoints for this tenant.
func (t tenant) Base() string { return t.Root + reservedSegment + "/" }

const reservedSegment = ".email-otp"

var (
	errNoTenant  = errors.New("the link does not name a tenant")
	errBadTenant = errors.New("the link's tenant part is malformed")
	errBadPath   = errors.New("the link's path is ambiguous")
)

// checkPath refuses a request path that a backend could resolve to another
// place than the one the gateway decides on (tenant, invitation paths, route
// policy): dot segments, also percent-encoded or with ';' parameters
// ("..;" is ".." to Tomcat and Spring), empty segments, encoded or double
// encoded slashes and backslashes, ';' anywhere in the path, backslashes and
// control characters. Such paths are refused in every tenant mode, so what
// the gateway checks is what the backend serves.
func checkPath(u *url.URL) error {
	p := u.Path
	if !isCleanPath(p) {
		return errBadPath
	}
	// Encoded separators survive decoding as '/' in Path but stay one
	// segment for the backend; a '%' left after decoding is double encoding.
	if u.RawPath != "" && hasEncodedSeparator(u.RawPath) || strings.IndexByte(p, '%') >= 0 && hasEncodedSeparator(p) {
		return errBadPath
	}
	return nil
}

// plainPathBytes reports whether p has no backslash, no ';' and no control
// character (textcheck.IsControl).
func plainPathBytes(p string) bool {
	return strings.IndexAny(p, `\;`) < 0 && !textcheck.HasControl(p)
}

// hasEncodedSeparator reports a %2f, %5c, %3b or %2e (any case) in s.
func hasEncodedSeparator(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		switch hex := [2]byte{s[i+1], s[i+2] | 0x20}; hex {
		case [2]byte{'2', 'f'}, [2]byte{'5', 'c'}, [2]byte{'3', 'b'}, [2]byte{'2', 'e'}:
			return true
		}
	}
	return false
}

// resolve finds the tenant of r. Forwarded-host headers are never consulted:
// only the host the client connected for (TLS SNI / Host) and the path count.
func (c TenantConfig) resolve(r *http.Request) (tenant, error) {
	switch c.From {
	case TenantFromStatic:
		return c.newTenant(c.Name, "/"), nil
	case TenantFromPath:
		return c.resolvePath(r)
	default:
		h := canonicalHost(r.Host)
		if h == "" {
			return tenant{}, errNoTenant
		}
		return c.newTenant(h, "/"), nil
	}
}

// produces returns the key this config gives the tenant named key, or false
// when no request could have that tenant: the admin API acts only on
// tenants a gateway can serve. Host names are lower-cased.
func (c TenantConfig) produces(key string) (string, bool) {
	if c.Namespace != "" {
		var ok bool
		if key, ok = strings.CutPrefix(key, c.Namespace+"/"); !ok {
			return "", false
		}
	}
	id := directory.TenantName(key)
	if directory.TenantKey("", c.From, id) != key && c.From != TenantFromHost {
		return "", false
	}
	switch c.From {
	case TenantFromStatic:
		if id != c.Name {
			return "", false
		}
	case TenantFromPath:
		if id == "" || !validTenantSegment(id) {
			return "", false
		}
	default:
		if id != key { // "path:acme" is no host name
			return "", false
		}
		if id = canonicalHost(id); !validHostTenant(id) {
			return "", false
		}
	}
	return directory.TenantKey(c.Namespace, c.From, id), true
}

// validHostTenant reports whether h is a host name (dot-separated labels of
// letters, digits, '-' and '_') or an IP address.
func validHostTenant(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// canonicalHost lower-cases a Host header and strips the port and a trailing dot.
func canonicalHost(hostport string) string {
	h := hostport
	// Most Host headers have no port: skip SplitHostPort's error for them.
	if strings.Contains(hostport, ":") {
		if host, _, err := net.SplitHostPort(hostport); err == nil {
			h = host
		}
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if strings.ContainsAny(h, "/\\ \x00@") {
		return ""
	}
	return h
}

func (c TenantConfig) resolvePath(r *http.Request) (tenant, error) {
	p := r.URL.Path
	if !strings.HasPrefix(p, c.Prefix) {
		return tenant{}, errNoTenant
	}
	rest := p[len(c.Prefix):]
	seg, _, _ := strings.Cut(rest, "/")
	if seg == "" {
		return tenant{}, errNoTenant
	}
	if !validTenantSegment(seg) || !isCleanPath(p) {
		return tenant{}, errBadTenant
	}
	// The decoded path must say the same as what the client sent: an encoded
	// slash or dot in the tenant segment could otherwise name another tenant.
	escSeg, _, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), c.Prefix), "/")
	if escSeg != seg {
		return tenant{}, errBadTenant
	}
	return c.newTenant(seg, c.rootOf(seg)), nil
}

// validTenantSegment allows letters, digits, '-', '_' and inner dots.
func validTenantSegment(s string) bool {
	if len(s) > 63 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// isCleanPath reports whether p is absolute, with no empty (but the last),
// "." or ".." segments, no backslash, ';' or control character, so what the
// gateway checks is what the backend serves.
func isCleanPath(p string) bool {
	return strings.HasPrefix(p, "/") && plainPathBytes(p) && cleanSegments(p)
}

// cleanSegments reports whether the absolute path p has no empty (but the
// last), "." or ".." segments. It allocates nothing: checkPath runs it on
// every request, after plainPathBytes has refused backslashes and controls.
func cleanSegments(p string) bool {
	rest := p[1:]
	for rest != "" {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if !more {
			break
		}
		rest = after
	}
	return true
}
