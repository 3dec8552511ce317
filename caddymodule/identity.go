package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// AuthMethod is the value of the method header.
const AuthMethod = "email-otp"

// normalizeHeaderName folds case and '_' so X_Auth_Email and x-auth-email are one
// name: backends behind CGI-style gateways read both as the same variable.
func normalizeHeaderName(h string) string {
	return strings.ReplaceAll(strings.ToLower(h), "_", "-")
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

// stripIdentityHeaders deletes every client-sent header that a backend could
// take for one of ours.
func (g *Gateway) stripIdentityHeaders(h http.Header) {
	for name := range h {
		if g.stripHeader[normalizeHeaderName(name)] {
			delete(h, name)
		}
	}
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
	if s, ok := r.Context().Value(signedInKey{}).(signedIn); ok && s.session.Tenant == t.ID {
		return s.session, s.guest, true, nil
	}
	return g.authenticate(r, t)
}

// passIdentity sets the identity headers and placeholders for the handlers
// after the gateway, and keeps the gateway's cookies from reaching them. The
// returned request carries the session for later gateways.
func (g *Gateway) passIdentity(r *http.Request, s flow.Session, guest directory.Guest) *http.Request {
	expires := s.Expiry().Format(time.RFC3339)
	r.Header.Set(g.Headers.Email, s.Email)
	r.Header.Set(g.Headers.Tenant, s.Tenant)
	r.Header.Set(g.Headers.Method, AuthMethod)
	r.Header.Set(g.Headers.Expires, expires)
	r.Header.Set(g.Headers.Status, string(guest.Status))
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", s.Email)
		repl.Set("http.auth.user.email", s.Email)
		repl.Set("http.auth.user.tenant", s.Tenant)
		repl.Set("http.auth.user.status", string(guest.Status))
	}
	removeGatewayCookies(r)
	return r.WithContext(context.WithValue(r.Context(), signedInKey{}, signedIn{session: s, guest: guest}))
}

// removeGatewayCookies rewrites the Cookie header without the gateway's cookies.
func removeGatewayCookies(r *http.Request) {
	cookies := r.Cookies()
	kept := cookies[:0]
	for _, c := range cookies {
		if !isGatewayCookie(c.Name) {
			kept = append(kept, c)
		}
	}
	if len(kept) == len(cookies) {
		return
	}
	r.Header.Del("Cookie")
	for _, c := range kept {
		r.AddCookie(c)
	}
}
