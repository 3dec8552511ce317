package emailotp

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/hygiene"
)

// AuthMethod is the value of the method header.
const AuthMethod = "email-otp"

// signedIn is what a gateway found, for the gateways after it in the same
// request (a route with its own policy): the cookies are gone by then.
type signedIn struct {
	session flow.Session
	guest   directory.Guest
}

type signedInKey struct{}

// sessionOf returns the session an earlier gateway of this request found for
// tenant t, or else the one in the request's cookies.
func (g *Gateway) sessionOf(r *http.Request, t tenant) (flow.Session, directory.Guest, bool, error) {
	if s, ok := r.Context().Value(signedInKey{}).(signedIn); ok && s.session.Tenant == t.Key {
		return s.session, s.guest, true, nil
	}
	return g.sessions.authenticate(r, t)
}

// passIdentity sets the identity headers and placeholders for the handlers
// after the gateway, and keeps the gateway's cookies from reaching them. The
// returned request carries the session for later gateways.
func (g *Gateway) passIdentity(r *http.Request, t tenant, s flow.Session, guest directory.Guest) *http.Request {
	id := identity{
		email: s.Email, tenant: t.ID, method: cmp.Or(s.Method, AuthMethod),
		expires: s.Expiry().Format(time.RFC3339), status: string(guest.Status),
	}
	if g.assertion != nil {
		// A failure leaves the header empty, which a verifying backend refuses.
		token, err := g.assertion.sign(g.links.of(r)+t.Root, t, s, guest)
		if err != nil {
			g.log.Error("assertion not signed", zap.String("tenant", t.ID), zap.Error(err))
		}
		id.assertion = token
	}
	g.identity.set(r.Header, id)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		var email any = s.Email
		repl.Set("http.auth.user.id", email)
		repl.Set("http.auth.user.email", email)
		repl.Set("http.auth.user.tenant", t.ID)
		repl.Set("http.auth.user.status", statusValue(guest.Status))
	}
	gatewayCookies.RemoveFrom(r.Header)
	return r.WithContext(context.WithValue(r.Context(), signedInKey{}, signedIn{session: s, guest: guest}))
}

// identity is what the identity headers tell the backend about a request.
type identity struct {
	email, tenant, method, expires, status string
	assertion                              string // "" without an assertion
}

// identityHeaders are the identity headers' names, canonical.
type identityHeaders struct {
	email, tenant, method, expires, status string
	assertion                              string // "": no assertion is sent
}

func newIdentityHeaders(h *HeaderNames, assertionHeader string) identityHeaders {
	c := http.CanonicalHeaderKey
	return identityHeaders{
		email: c(h.Email), tenant: c(h.Tenant), method: c(h.Method), expires: c(h.Expires), status: c(h.Status),
		assertion: c(assertionHeader),
	}
}

// set puts id's values under the names. The values share one backing
// array, each header its own one-element slice of it: this runs on every
// request, and it is one allocation instead of six.
func (n identityHeaders) set(h http.Header, id identity) {
	v := []string{id.email, id.tenant, id.method, id.expires, id.status, id.assertion}
	h[n.email], h[n.tenant], h[n.method], h[n.expires], h[n.status] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4], v[4:5:5]
	if n.assertion != "" {
		h[n.assertion] = v[5:6:6]
	}
}

// statusValues are the guest statuses as placeholder values, boxed once:
// boxing a string per request is an allocation.
var statusValues = map[directory.Status]any{
	directory.Invited: string(directory.Invited), directory.Redeemed: string(directory.Redeemed), directory.Revoked: string(directory.Revoked),
}

func statusValue(s directory.Status) any {
	if v, ok := statusValues[s]; ok {
		return v
	}
	return string(s)
}

// HeaderNames are the identity headers' names.
type HeaderNames struct {
	// Default: X-Auth-Email.
	Email string `json:"email,omitempty"`
	// Default: X-Auth-Tenant.
	Tenant string `json:"tenant,omitempty"`
	// Default: X-Auth-Method.
	Method string `json:"method,omitempty"`
	// Default: X-Auth-Session-Expires.
	Expires string `json:"expires,omitempty"`
	// The guest's directory status (invited, redeemed). Default: X-Auth-Guest-Status.
	Status string `json:"status,omitempty"`
}

// applyDefaults names every header left unnamed.
func (h *HeaderNames) applyDefaults() {
	for _, n := range []struct {
		field *string
		def   string
	}{
		{&h.Email, "X-Auth-Email"},
		{&h.Tenant, "X-Auth-Tenant"},
		{&h.Method, "X-Auth-Method"},
		{&h.Expires, "X-Auth-Session-Expires"},
		{&h.Status, "X-Auth-Guest-Status"},
	} {
		if *n.field == "" {
			*n.field = n.def
		}
	}
}

func (h *HeaderNames) all() []string {
	return []string{h.Email, h.Tenant, h.Method, h.Expires, h.Status}
}

// defaultAssertionHeader carries the assertion unless assertion names another.
const defaultAssertionHeader = "X-Auth-Assertion"

// clientForbidden is every header a client's copy of which is removed before
// the backend: the identity headers and the assertion's, which is removed
// even where no assertion is configured (the default name then), since a
// backend that verifies assertions may sit behind a route this gateway
// leaves, and a captured token would replay for its lifetime.
func clientForbidden(h *HeaderNames, assertionHeader string) hygiene.Headers {
	names := h.canonical()
	for _, a := range []string{assertionHeader, defaultAssertionHeader} {
		if a != "" && !names.Has(a) {
			names = append(names, http.CanonicalHeaderKey(a))
		}
	}
	return names
}

func (h *HeaderNames) canonical() hygiene.Headers {
	names := h.all()
	for i, n := range names {
		names[i] = http.CanonicalHeaderKey(n)
	}
	return names
}
