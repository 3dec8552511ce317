package caddymodule

import (
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
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
}

func (g *Gateway) getSession(w http.ResponseWriter, r *http.Request, t tenant) {
	if !jsonForOwnPages(w, r, t) {
		return
	}
	s, guest, ok, err := g.authenticate(r, t)
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
			Email: s.Email, Tenant: t.Name, Status: string(guest.Status),
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
	if !ownPagesOnly(r, t) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"shown only to this tenant's own pages"}` + "\n"))
		return false
	}
	return true
}

// ownPagesOnly lets the JSON endpoints (session, status) answer plain
// clients and requests from this tenant's own pages, never to another site's script nor,
// where the browser tells, to a page of another path tenant (same origin,
// other tenant). A browser's request from a page (Sec-Fetch-Site:
// same-origin, not a navigation) must show a Referer inside the tenant root
// when tenants share the origin; browsers send it by default.
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
	return site != "same-origin" || r.Header.Get("Sec-Fetch-Mode") == "navigate"
}
