package emailotp

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/templates"
)

// forbidden answers a signed-in guest whom this route's policy or the
// guest's own paths do not admit: a page, never a redirect loop.
func (g *Gateway) forbidden(w http.ResponseWriter, r *http.Request, t tenant, email string) {
	g.log.Info("access refused: signed in, not admitted here", g.log.fields(r, t, email, zap.String("path", r.URL.Path))...)
	g.pages.page(w, r, t, http.StatusForbidden, templates.PageForbidden, templates.PageData{
		Email: email,
		RD:    safeRD(r.URL.RequestURI(), t),
	})
}

// sessionConflict answers a request with two different sessions for the
// tenant: no one's identity goes to the backend, and signing out ends both.
func (g *Gateway) sessionConflict(w http.ResponseWriter, r *http.Request, t tenant) {
	g.log.Warn("request refused: two different sessions for one tenant (a planted cookie?)", g.log.fields(r, t, "", zap.String("path", r.URL.Path))...)
	g.pages.errorPage(w, r, t, http.StatusBadRequest, templates.TwoSessionsTitle, templates.TwoSessionsText, nil,
		link{t.Base() + "signout", templates.ActionSignOut})
}
