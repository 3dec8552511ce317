package emailotp

import (
	"net/http"
	"net/url"
)

// linkOrigin is the scheme and host of the links the gateway hands out
// beyond the request (code and invitation emails, the assertion's issuer):
// base_url, or else the request's own.
type linkOrigin struct {
	base *url.URL // nil: the request's own origin
}

func (o linkOrigin) of(r *http.Request) string {
	if o.base != nil {
		return o.base.String()
	}
	return origin(r)
}

// endpoints is the absolute URL of t's endpoints for links in a code email;
// "" (no link) for a tenant only a pattern admits, whose id, in the link's
// host or path, a stranger may have chosen.
func (o linkOrigin) endpoints(r *http.Request, t tenant) string {
	if !t.Named {
		return ""
	}
	return o.of(r) + t.Base()
}

// codeHost is the host of the one-time-code line ("@host #code"), which
// browsers use to offer the code only on that site; "" (no line) for a
// tenant only a pattern admits.
func (o linkOrigin) codeHost(r *http.Request, t tenant) string {
	if !t.Named {
		return ""
	}
	if o.base != nil {
		return canonicalHost(o.base.Hostname())
	}
	return canonicalHost(r.Host)
}

// signInLink is the sign-in link of an invitation for tenant t that lands on
// rd, on u's origin unless base_url names another.
func (o linkOrigin) signInLink(u *url.URL, t tenant, rd, email string) string {
	if o.base != nil {
		u = o.base
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: t.Base() + "signin",
		RawQuery: url.Values{"rd": {rd}, "email": {email}}.Encode()}).String()
}
