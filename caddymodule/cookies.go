package emailotp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"iter"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"

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

func (g *Gateway) setCookie(w http.ResponseWriter, r *http.Request, t tenant, base, value string, expires time.Time) {
	g.setCookieAt(w, r, t.Root, base, value, expires)
}

// setCookieAt sets (or, with value "", clears) cookie base with Path path.
// An answer that sets a gateway cookie is never stored by a cache: a shared
// one would hand the cookie to the next client, the redirect after a code
// included.
func (g *Gateway) setCookieAt(w http.ResponseWriter, r *http.Request, path, base, value string, expires time.Time) {
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

// errSessionConflict: a request carries two different valid sessions for one
// tenant. On path tenants a page of another tenant (same origin) can plant
// its own session cookie with a longer Path, which the browser sends first:
// no session of such a request is trusted, whichever comes first.
var errSessionConflict = errors.New("the request carries two different sessions for this tenant")

// authenticate returns the one valid session among the request's session
// cookie values for tenant t, with the guest's record; two different ones
// are errSessionConflict. A store error fails closed.
func (g *Gateway) authenticate(r *http.Request, t tenant) (flow.Session, directory.Guest, bool, error) {
	var found signedIn
	n, err := g.eachSession(r, t, func(s signedIn) bool {
		if found.session.ID == "" {
			found = s
		}
		return found.session.ID == s.session.ID
	})
	switch {
	case err != nil:
		return flow.Session{}, directory.Guest{}, false, err
	case n > 1:
		return flow.Session{}, directory.Guest{}, false, errSessionConflict
	}
	return found.session, found.guest, n == 1, nil
}

// allSessions returns every different valid session of the request for t.
func (g *Gateway) allSessions(r *http.Request, t tenant) ([]signedIn, error) {
	var all []signedIn
	_, err := g.eachSession(r, t, func(s signedIn) bool {
		if !slices.ContainsFunc(all, func(o signedIn) bool { return o.session.ID == s.session.ID }) {
			all = append(all, s)
		}
		return true
	})
	return all, err
}

// eachSession calls fn with each different session (by id) among the
// request's session cookie values that opens for t and passes the service's
// checks, while fn returns true; it returns how many it found.
func (g *Gateway) eachSession(r *http.Request, t tenant, fn func(signedIn) bool) (int, error) {
	name := cookieName(r, t, sessionCookie)
	n, last := 0, ""
	for v := range cookieValues(r, name) {
		s, err := g.sessions.OpenSession(name, t.Key, v)
		if err != nil {
			checks(t).invalid.Inc()
			continue
		}
		if s.ID == last {
			continue
		}
		guest, err := g.service.Authenticate(r.Context(), t.Key, s)
		if err != nil {
			if !isSessionRefusal(err) {
				return n, err
			}
			countRefusal(t, err)
			continue
		}
		n, last = n+1, s.ID
		if !fn(signedIn{session: s, guest: guest}) {
			return n, nil
		}
	}
	return n, nil
}

// countRefusal counts a session the service refused, by why.
func countRefusal(t tenant, err error) {
	c := checks(t)
	switch err {
	case flow.ErrSessionExpired:
		c.expired.Inc()
	case flow.ErrSessionRevoked:
		c.revoked.Inc()
	default:
		c.invalid.Inc()
	}
}

func isSessionRefusal(err error) bool {
	return err == flow.ErrSessionExpired || err == flow.ErrSessionRevoked || err == flow.ErrWrongTenant
}

func (g *Gateway) setSession(w http.ResponseWriter, r *http.Request, t tenant, s flow.Session) error {
	name := cookieName(r, t, sessionCookie)
	v, err := g.sessions.SealSession(name, t.Key, s)
	if err != nil {
		return err
	}
	g.setCookie(w, r, t, sessionCookie, v, s.Expiry())
	return nil
}

// loadPending returns this browser's pending state for t, or a fresh one.
// A request may carry several values of the cookie: a page on a sibling host
// can toss a genuine one of this tenant (anyone gets one from the sign-in
// page) under a parent Domain and a longer Path, which the browser sends
// first. So no value wins for coming first: a form's answer takes the value
// its CSRF token was made for (csrf != ""), and a page takes the value with
// a sign-in under way (a code or a consent waiting), the newest first. A
// tossed value then can't make this browser's forms fail; what remains is
// in docs/threat-model.md.
func (g *Gateway) loadPending(r *http.Request, t tenant, csrf string) (flow.Pending, bool) {
	name := cookieNameAt(r, t.Base(), pendingCookie)
	now := g.service.Now()
	var best flow.Pending
	found := false
	for v := range cookieValues(r, name) {
		var p flow.Pending
		if g.pending.Open(sealName(name, t), v, &p) != nil || p.Nonce == "" || now.Unix() >= p.Expires {
			continue
		}
		if csrf != "" && g.csrfOK(t, p.Nonce, csrf) {
			return p, true
		}
		if !found || pendingRank(p, now) > pendingRank(best, now) ||
			pendingRank(p, now) == pendingRank(best, now) && p.Expires > best.Expires {
			best, found = p, true
		}
	}
	if !found {
		return flow.NewPending(), false
	}
	return best, true
}

// pendingRank orders pending values for a page: one with a sign-in under
// way before one without.
func pendingRank(p flow.Pending, now time.Time) int {
	if p.Held != nil || p.Waiting(now) {
		return 1
	}
	return 0
}

func (g *Gateway) savePending(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending) error {
	exp := g.service.Now().Add(pendingLifetime)
	p.Expires = exp.Unix()
	name := cookieNameAt(r, t.Base(), pendingCookie)
	v, err := g.pending.Seal(sealName(name, t), p)
	if err != nil {
		return err
	}
	// Only the gateway's own pages read it: scoped to them, it does not ride
	// along on every request to the backend.
	g.setCookieAt(w, r, t.Base(), pendingCookie, v, exp)
	return nil
}

// csrfToken binds a form to this browser (its pending nonce or session id) and
// tenant, so another site can't post it on the guest's behalf.
func (g *Gateway) csrfToken(t tenant, binding string) string {
	m := hmac.New(sha256.New, g.csrfKey)
	m.Write([]byte(t.Key))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (g *Gateway) csrfOK(t tenant, binding, token string) bool {
	return binding != "" && hmac.Equal([]byte(g.csrfToken(t, binding)), []byte(token))
}
