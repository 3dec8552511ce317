package emailotp

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// sessionJSON is the body of GET …/session.
type sessionJSON struct {
	Email    string    `json:"email"`
	Tenant   string    `json:"tenant"`
	Status   string    `json:"status"`
	Method   string    `json:"method"` // email-otp or passkey, as X-Auth-Method says
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
}

func (g *Gateway) getSession(w http.ResponseWriter, r *http.Request, t tenant) {
	if !jsonForOwnPages(w, r, t) {
		return
	}
	s, guest, ok, err := g.sessions.authenticate(r, t)
	switch {
	case errors.Is(err, errSessionConflict):
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":"two different sessions; sign out and in again"}` + "\n"))
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"session check unavailable"}` + "\n"))
	case !ok:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"no session"}` + "\n"))
	default:
		_ = json.NewEncoder(w).Encode(sessionJSON{
			Email: s.Email, Tenant: t.ID, Status: string(guest.Status), Method: cmp.Or(s.Method, AuthMethod),
			IssuedAt: time.Unix(s.IssuedAt, 0).UTC(), Expires: s.Expiry(),
		})
	}
}

// jsonForOwnPages sets the headers of a JSON answer and refuses (403) a
// request ownPagesOnly does not allow; it reports whether to go on.
func jsonForOwnPages(w http.ResponseWriter, r *http.Request, t tenant) bool {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	neverFramed(h)
	if !ownPagesOnly(r, t) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"shown only to this tenant's own pages"}` + "\n"))
		return false
	}
	return true
}

// neverFramed keeps a gateway answer that is not a page out of every frame:
// a page of another path tenant (same origin) could otherwise frame it
// without a Referer and read it.
func neverFramed(h http.Header) {
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
}

// ownPagesOnly lets the JSON endpoints (session, status) answer plain
// clients and requests from this tenant's own pages, never another site's
// script nor, where the browser tells, a page of another path tenant (same
// origin, other tenant): a browser's request from a page must show a Referer
// inside the tenant root when tenants share the origin (browsers send it by
// default), and without one only a top-level navigation passes, never a
// frame. What a same-origin script can still do (set its fetch's referrer)
// is in docs/threat-model.md: path tenants share one browser origin.
func ownPagesOnly(r *http.Request, t tenant) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != origin(r) {
		return false
	}
	if t.Root == "/" {
		return true
	}
	ref, hasRef := r.Header["Referer"]
	if hasRef {
		u, err := url.Parse(ref[0])
		return err == nil && u.Host == r.Host && strings.HasPrefix(u.Path, t.Root)
	}
	if site != "same-origin" {
		return true
	}
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
}
