package emailotp

import (
	"errors"
	"net/http"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

func (g *Gateway) getConsent(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.loadPending(r, t, "")
	if p.Held == nil {
		g.backToSignIn(w, r, t, p, flow.NoticeNone)
		return
	}
	g.page(w, r, t, http.StatusOK, templates.PageConsent, templates.PageData{
		CSRF: g.csrfToken(t, p.Nonce), Email: p.Held.Email, RD: safeRD(p.RD, t),
	})
}

// postConsent redeems the held session on "accept"; "cancel" drops it and
// nothing is recorded.
func (g *Gateway) postConsent(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "decision", link{t.Base() + "signin", templates.ActionGoToSignin})
	if !ok {
		return
	}
	held := p.Held
	if held == nil || held.Tenant != t.Key || g.service.Now().Unix() >= held.ExpiresAt {
		g.backToSignIn(w, r, t, p, flow.NoticeNone)
		return
	}
	if form["decision"] != "accept" {
		p.Held = nil
		if err := g.savePending(w, r, t, p); err != nil {
			g.internalError(w, r, t, err)
			return
		}
		g.logger.Info("consent declined; not signed in", g.eventFields(r, t, held.Email)...)
		g.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{
			Notice: g.words(r).Say(templates.ConsentDeclined, templates.Vars{"Tenant": g.displayName(t.ID)}),
		})
		return
	}
	if _, err := g.service.Redeem(r.Context(), *held); errors.Is(err, directory.ErrRevoked) {
		g.backToSignIn(w, r, t, p, flow.NoticeNone)
		return
	} else if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	g.step(r, t, "consent_given", "", held.Email)
	g.issueSession(w, r, t, p, *held)
}
