package emailotp

import (
	"context"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// AuthMethod is the value of the method header.
const AuthMethod = "email-otp"

// sameHeaderName compares header names folding case and '_' to '-', so
// X_Auth_Email and x-auth-email are one name: backends behind CGI-style
// gateways read both as the same variable.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// identityNames are the identity headers' names, canonical, in the order
// passIdentity sets them.
type identityNames []string

// has reports whether name is one of ours, folding case and '_'.
func (ids identityNames) has(name string) bool {
	for _, ours := range ids {
		if sameHeaderName(name, ours) {
			return true
		}
	}
	return false
}

// stripHeaders deletes every header that a backend could take for one of ours.
func (ids identityNames) stripHeaders(h http.Header) {
	for name := range h {
		if ids.has(name) {
			delete(h, name)
		}
	}
}

// stripClient removes everything a client could send to pass for the
// gateway's identity headers, or to take them away on the way to the
// backend: copies and variants of the headers; Connection tokens that name
// them (a proxy drops the headers that Connection names, so the backend
// would get none); and request trailers that name them (a proxy forwards
// trailers after the body, past every header check).
func (ids identityNames) stripClient(r *http.Request) {
	ids.stripHeaders(r.Header)
	if conn, ok := r.Header["Connection"]; ok {
		r.Header["Connection"] = ids.withoutTokens(conn)
	}
	if r.Trailer != nil {
		// net/http fills the trailer values in when the body ends, into
		// this same map, whatever was declared: strip again then.
		ids.stripHeaders(r.Trailer)
		r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer, ids: ids}
	}
}

// withoutTokens returns Connection values without the tokens that name an
// identity header; untouched values come back as they are.
func (ids identityNames) withoutTokens(values []string) []string {
	named := false
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			named = named || ids.has(textproto.TrimString(tok))
		}
	}
	if !named {
		return values
	}
	var kept []string
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" && !ids.has(tok) {
				kept = append(kept, tok)
			}
		}
	}
	return []string{strings.Join(kept, ", ")}
}

// trailerGuard strips identity headers from a request's trailers once the
// body has been read to its end, which is when net/http adds them.
type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
	ids     identityNames
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.ids.stripHeaders(b.trailer)
	}
	return n, err
}

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
	return g.authenticate(r, t)
}

// passIdentity sets the identity headers and placeholders for the handlers
// after the gateway, and keeps the gateway's cookies from reaching them. The
// returned request carries the session for later gateways.
func (g *Gateway) passIdentity(r *http.Request, t tenant, s flow.Session, guest directory.Guest) *http.Request {
	// One backing array for the values (in identityNames' order), set
	// under names canonicalized at provision: this runs on every request.
	values := []string{s.Email, t.ID, AuthMethod, s.Expiry().Format(time.RFC3339), string(guest.Status), ""}
	if g.assertion != nil {
		// A remembered assertion costs no signature; a failure leaves the
		// header empty, which a verifying backend refuses.
		token, err := g.assertionFor(r, t, s, guest)
		if err != nil {
			g.logger.Error("assertion not signed", zap.String("tenant", t.ID), zap.Error(err))
		}
		values[5] = token
	}
	for i, name := range g.identityNames {
		r.Header[name] = values[i : i+1 : i+1]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		var email any = s.Email
		repl.Set("http.auth.user.id", email)
		repl.Set("http.auth.user.email", email)
		repl.Set("http.auth.user.tenant", t.ID)
		repl.Set("http.auth.user.status", statusValue(guest.Status))
	}
	removeGatewayCookies(r.Header)
	return r.WithContext(context.WithValue(r.Context(), signedInKey{}, signedIn{session: s, guest: guest}))
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

// removeGatewayCookies drops the gateway's cookies from the Cookie header
// lines and leaves every other cookie as the client sent it.
func removeGatewayCookies(h http.Header) {
	lines, ok := h["Cookie"]
	if !ok {
		return
	}
	if len(lines) == 1 { // what browsers send: one line
		// A new slice, never the old one changed in place: whoever
		// built the header may share its value slices.
		switch line := withoutGatewayCookies(lines[0]); {
		case line == "":
			delete(h, "Cookie")
		case line != lines[0]:
			h["Cookie"] = []string{line}
		}
		return
	}
	kept := make([]string, 0, len(lines))
	for _, line := range lines {
		if line = withoutGatewayCookies(line); line != "" {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// withoutGatewayCookies returns one Cookie line without the gateway's
// cookies, split and trimmed as net/http reads it.
func withoutGatewayCookies(line string) string {
	if !strings.Contains(line, "email_otp_") {
		return line
	}
	var buf [8]string
	kept := buf[:0]
	for part := range strings.SplitSeq(line, ";") {
		part = textproto.TrimString(part)
		name, _, _ := strings.Cut(part, "=")
		if part != "" && !isGatewayCookie(textproto.TrimString(name)) {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "; ")
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
func clientForbidden(h *HeaderNames, assertionHeader string) identityNames {
	names := h.canonical()
	for _, a := range []string{assertionHeader, defaultAssertionHeader} {
		if a != "" && !names.has(a) {
			names = append(names, http.CanonicalHeaderKey(a))
		}
	}
	return names
}

func (h *HeaderNames) canonical() identityNames {
	names := h.all()
	for i, n := range names {
		names[i] = http.CanonicalHeaderKey(n)
	}
	return names
}
