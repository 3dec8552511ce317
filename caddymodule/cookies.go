package emailotp

import (
	"iter"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/otpgate/caddy-email-otp/flow"

	"github.com/otpgate/caddy-email-otp/internal/hygiene"
)

// Cookie base names; on HTTPS they get the __Host- (host and static tenants,
// Path=/) or __Secure- (path tenants, Path=tenant root) prefix.
const (
	sessionCookie = "email_otp_session"
	pendingCookie = "email_otp_pending"
	maxCookieLen  = 4096
	// pendingLifetime keeps the last address for pre-filling the sign-in page
	// when the session has ended.
	pendingLifetime = 30 * 24 * time.Hour
)

// gatewayCookies are the cookies only the gateway reads and sets: removed
// from the Cookie line a backend sees, refused in the backend's Set-Cookie.
var gatewayCookies = hygiene.Cookies{Marker: "email_otp_", Bases: []string{sessionCookie, pendingCookie, deviceCookie}}

// isHTTPS reports whether the browser reached the site over HTTPS: the
// connection is TLS, or a trusted proxy (Caddy's trusted_proxies) that ended
// TLS says so in X-Forwarded-Proto. Behind such a proxy the cookies are then
// __Host-/__Secure- and Secure, which a sibling host can't toss.
func isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted && r.Header.Get("X-Forwarded-Proto") == "https"
}

func cookieName(r *http.Request, t tenant, base string) string { return cookieNameAt(r, t.Root, base) }

// cookieNameAt is the name of cookie base with Path path: on HTTPS,
// __Host- where the path is "/", __Secure- elsewhere.
func cookieNameAt(r *http.Request, path, base string) string {
	if !isHTTPS(r) {
		return base
	}
	if path == "/" {
		return "__Host-" + base
	}
	return "__Secure-" + base
}

func sealName(name string, t tenant) string { return flow.SealName(name, t.Key) }

func setCookie(w http.ResponseWriter, r *http.Request, t tenant, base, value string, expires time.Time) {
	setCookieAt(w, r, t.Root, base, value, expires)
}

// setCookieAt sets (or, with value "", clears) cookie base with Path path.
// An answer that sets a gateway cookie is never stored by a cache: a shared
// one would hand the cookie to the next client, the redirect after a code
// included.
func setCookieAt(w http.ResponseWriter, r *http.Request, path, base, value string, expires time.Time) {
	w.Header().Set("Cache-Control", "no-store")
	c := &http.Cookie{
		Name:     cookieNameAt(r, path, base),
		Value:    value,
		Path:     path,
		HttpOnly: true,
		Secure:   isHTTPS(r),
		SameSite: http.SameSiteLaxMode,
	}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
		c.MaxAge = int(time.Until(expires).Seconds())
		if c.MaxAge < 1 {
			c.MaxAge = 1
		}
	}
	http.SetCookie(w, c)
}

// cookieValues yields every value of the named cookie that is not oversized:
// a request may carry several (one per path, or planted by a sibling host),
// and the first is not trusted blindly. Lines are split and trimmed as
// net/http reads them, without its allocations; a value with bytes a cookie
// may not hold is yielded too, and fails to open.
func cookieValues(r *http.Request, name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, line := range r.Header["Cookie"] {
			for part := range strings.SplitSeq(line, ";") {
				k, v, ok := strings.Cut(textproto.TrimString(part), "=")
				if !ok || textproto.TrimString(k) != name {
					continue
				}
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				if len(v) > 0 && len(v) <= maxCookieLen && !yield(v) {
					return
				}
			}
		}
	}
}
