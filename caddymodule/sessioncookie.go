package emailotp

import (
	"errors"
	"net/http"
	"slices"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// errSessionConflict: a request carries two different valid sessions for one
// tenant. On path tenants a page of another tenant (same origin) can plant
// its own session cookie with a longer Path, which the browser sends first:
// no session of such a request is trusted, whichever comes first.
var errSessionConflict = errors.New("the request carries two different sessions for this tenant")

// sessionCookies reads and writes the session cookie: sealed for its name
// and tenant, and checked by the service (expiry, revocation, the guest's
// record) each time it is read.
type sessionCookies struct {
	sealer  *flow.SessionSealer
	service *flow.Service
}

// authenticate returns the one valid session among the request's session
// cookie values for tenant t, with the guest's record; two different ones
// are errSessionConflict. A store error fails closed.
func (c sessionCookies) authenticate(r *http.Request, t tenant) (flow.Session, directory.Guest, bool, error) {
	var found signedIn
	n, err := c.each(r, t, func(s signedIn) bool {
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

// all returns every different valid session of the request for t.
func (c sessionCookies) all(r *http.Request, t tenant) ([]signedIn, error) {
	var all []signedIn
	_, err := c.each(r, t, func(s signedIn) bool {
		if !slices.ContainsFunc(all, func(o signedIn) bool { return o.session.ID == s.session.ID }) {
			all = append(all, s)
		}
		return true
	})
	return all, err
}

// each calls fn with each different session (by id) among the
// request's session cookie values that opens for t and passes the service's
// checks, while fn returns true; it returns how many it found.
func (c sessionCookies) each(r *http.Request, t tenant, fn func(signedIn) bool) (int, error) {
	name := cookieName(r, t, sessionCookie)
	n, last := 0, ""
	for v := range cookieValues(r, name) {
		s, err := c.sealer.OpenSession(name, t.Key, v)
		if err != nil {
			checks(t).invalid.Inc()
			continue
		}
		if s.ID == last {
			continue
		}
		guest, err := c.service.Authenticate(r.Context(), t.Key, s)
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

func (c sessionCookies) set(w http.ResponseWriter, r *http.Request, t tenant, s flow.Session) error {
	name := cookieName(r, t, sessionCookie)
	v, err := c.sealer.SealSession(name, t.Key, s)
	if err != nil {
		return err
	}
	setCookie(w, r, t, sessionCookie, v, s.Expiry())
	return nil
}
