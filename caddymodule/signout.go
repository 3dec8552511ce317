package emailotp

import (
	"net/http"
	"time"

	"github.com/otpgate/caddy-email-otp/templates"
)

func (g *Gateway) getSignOut(w http.ResponseWriter, r *http.Request, t tenant) {
	all, err := g.sessions.all(r, t)
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	rd := g.wayBack(r, t, r.URL.Query().Get("rd"))
	if len(all) == 0 {
		g.pages.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{RD: rd})
		return
	}
	g.pages.page(w, r, t, http.StatusOK, templates.PageSignOut, templates.PageData{
		CSRF: g.csrf.token(t, all[0].session.ID), Email: all[0].session.Email, RD: rd,
	})
}

// wayBack is the document a signing-out guest can return to: the rd the
// link names (a backend's "sign out" link may pass the page it is on), else
// the one they signed in for, else the tenant root.
func (g *Gateway) wayBack(r *http.Request, t tenant, rd string) string {
	if rd == "" {
		p, _ := g.pending.load(r, t, "")
		rd = p.RD
	}
	return safeRD(rd, t)
}

// postSignOut ends every session the request carries for the tenant: after a
// session conflict, the planted one ends too.
func (g *Gateway) postSignOut(w http.ResponseWriter, r *http.Request, t tenant) {
	all, err := g.sessions.all(r, t)
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	if len(all) > 0 {
		token := ""
		if form, err := readForm(w, r, "csrf"); err == nil {
			token = form["csrf"]
		}
		if !g.checkFormOrigin(w, r, t, all[0].session.ID, token) {
			return
		}
		for _, s := range all {
			if err := g.service.SignOut(r.Context(), s.session); err != nil {
				g.pages.internalError(w, r, t, err)
				return
			}
			g.log.Info("signed out", g.log.fields(r, t, s.session.Email)...)
			g.log.step(r, t, "signed_out", "", s.session.Email)
		}
	}
	setCookie(w, r, t, sessionCookie, "", time.Time{})
	g.pages.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{RD: g.wayBack(r, t, r.PostFormValue("rd"))})
}
