package emailotp

import (
	"net/http"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// pendingCookies reads and writes the pending cookie: this browser's sign-in
// under way for a tenant (the challenge, the link first opened, the last
// address), sealed, on the gateway's endpoints only.
type pendingCookies struct {
	sealer *flow.Sealer
	csrf   csrfKey
	now    func() time.Time
}

// load returns this browser's pending state for t, or a fresh one.
// A request may carry several values of the cookie: a page on a sibling host
// can toss a genuine one of this tenant (anyone gets one from the sign-in
// page) under a parent Domain and a longer Path, which the browser sends
// first. So no value wins for coming first: a form's answer takes the value
// its CSRF token was made for (csrf != ""), and a page takes the value with
// a sign-in under way (a code or a consent waiting), the newest first. A
// tossed value then can't make this browser's forms fail; what remains is
// in docs/threat-model.md.
func (c pendingCookies) load(r *http.Request, t tenant, csrf string) (flow.Pending, bool) {
	name := cookieNameAt(r, t.Base(), pendingCookie)
	now := c.now()
	var best flow.Pending
	found := false
	for v := range cookieValues(r, name) {
		var p flow.Pending
		if c.sealer.Open(sealName(name, t), v, &p) != nil || p.Nonce == "" || now.Unix() >= p.Expires {
			continue
		}
		if csrf != "" && c.csrf.ok(t, p.Nonce, csrf) {
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

func (c pendingCookies) save(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending) error {
	exp := c.now().Add(pendingLifetime)
	p.Expires = exp.Unix()
	name := cookieNameAt(r, t.Base(), pendingCookie)
	v, err := c.sealer.Seal(sealName(name, t), p)
	if err != nil {
		return err
	}
	// Only the gateway's own pages read it: scoped to them, it does not ride
	// along on every request to the backend.
	setCookieAt(w, r, t.Base(), pendingCookie, v, exp)
	return nil
}
