package emailotp

import (
	"errors"
	"net/http"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

func (g *Gateway) getConsent(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.pending.load(r, t, "")
	if p.Held == nil {
		g.backToSignIn(w, r, t, p, flow.NoticeNone)
		return
	}
	g.pages.page(w, r, t, http.StatusOK, templates.PageConsent, templates.PageData{
		CSRF: g.csrf.token(t, p.Nonce), Email: p.Held.Email, RD: safeRD(p.RD, t),
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
		if err := g.pending.save(w, r, t, p); err != nil {
			g.pages.internalError(w, r, t, err)
			return
		}
		g.log.Info("consent declined; not signed in", g.log.fields(r, t, held.Email)...)
		g.pages.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{
			Notice: g.pages.words(r).Say(templates.ConsentDeclined, templates.Vars{"Tenant": g.pages.tenantName(t.Key, g.pages.words(r))}),
		})
		return
	}
	if _, err := g.service.Redeem(r.Context(), *held); errors.Is(err, directory.ErrRevoked) {
		g.backToSignIn(w, r, t, p, flow.NoticeNone)
		return
	} else if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	g.log.step(r, t, "consent_given", "", held.Email)
	g.issueSession(w, r, t, p, *held)
}
