package caddymodule

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

func (g *Gateway) getVerify(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.loadPending(r, t)
	ch, err := g.service.Pending(r.Context(), t.ID, p.Challenge)
	if err != nil {
		if !errors.Is(err, flow.ErrChallengeNotFound) {
			g.internalError(w, r, t, err)
			return
		}
		if p.HeldAt(g.service.Now()) {
			// Held by a limit with no code of this browser's: the page a
			// sent code would show, with when to ask again.
			g.verifyPage(w, r, t, p, flow.Challenge{Delivery: flow.DeliverySent, MaxAttempts: 1}, http.StatusOK, "")
			return
		}
		reason := "expired"
		if p.Challenge == "" {
			reason = ""
		}
		g.backToSignIn(w, r, t, p, reason)
		return
	}
	g.verifyPage(w, r, t, p, ch, http.StatusOK, "")
}

// deliveryRefresh is how often the enter-code page reloads itself while
// delivery is in trouble, so a guest without JavaScript sees the outcome.
// "Queued" and "sent" look alike (a decoy of an address that may not sign
// in is "sent" at once, a real code is "queued" for a moment), so neither
// reloads.
var deliveryRefresh = map[flow.DeliveryState]int{flow.DeliveryRetrying: 5}

func (g *Gateway) verifyPage(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, ch flow.Challenge, status int, fieldError string) {
	data := templates.PageData{
		CSRF:       g.csrfToken(t, p.Nonce),
		RD:         safeRD(p.RD, t),
		Email:      p.Email,
		TriesLeft:  ch.TriesLeft(),
		CodeLength: g.service.CodeLength(),
		FieldError: fieldError,
		Delivery:   ch.Delivery.String(),
		ExpiresAt:  ch.ExpiresAt.UTC().Format("15:04 MST"),
	}
	if fieldError == "" {
		data.Refresh = deliveryRefresh[ch.Delivery]
	}
	if p.HeldAt(g.service.Now()) {
		data.Notice = "A code was sent to this address a short while ago. Check your inbox and spam folder; you can ask for a new code after " +
			time.Unix(p.HeldUntil, 0).UTC().Format("15:04:05 MST") + "."
	}
	if ch.ExpiresAt.IsZero() {
		data.ExpiresAt = ""
	}
	g.page(w, r, t, status, templates.PageVerify, data)
}

func (g *Gateway) backToSignIn(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, reason string) {
	target := t.Base() + "signin?rd=" + url.QueryEscape(safeRD(p.RD, t))
	if reason != "" {
		target += "&reason=" + reason
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (g *Gateway) postVerify(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "code", link{t.Base() + "verify", "Enter the code again"})
	if !ok {
		return
	}
	if !p.Waiting(g.service.Now()) {
		g.backToSignIn(w, r, t, p, "")
		return
	}
	res, err := g.service.Verify(r.Context(), t.ID, p.Challenge, form["code"])
	if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	switch res.Outcome {
	case flow.Verified:
		if res.NeedsConsent {
			p.AwaitConsent(res.Session)
			if err := g.savePending(w, r, t, p); err != nil {
				g.internalError(w, r, t, err)
				return
			}
			g.logger.Info("code verified; asking for consent", g.eventFields(r, t, res.Email)...)
			http.Redirect(w, r, t.Base()+"consent", http.StatusSeeOther)
			return
		}
		g.issueSession(w, r, t, p, res.Session)
	case flow.WrongCode:
		g.logger.Info("verify failed: wrong code", g.eventFields(r, t, res.Email, zap.Int("tries_left", res.TriesLeft))...)
		msg := "That code is not right. You have " + plural(res.TriesLeft, "try", "tries") + " left."
		g.verifyPage(w, r, t, p, res.Challenge, http.StatusUnprocessableEntity, msg)
	case flow.Malformed:
		msg := "Enter the " + itoa(g.service.CodeLength()) + "-digit code from the email."
		g.verifyPage(w, r, t, p, res.Challenge, http.StatusUnprocessableEntity, msg)
	case flow.Locked:
		g.logger.Warn("verify failed: code locked after too many wrong tries", g.eventFields(r, t, res.Email)...)
		g.backToSignIn(w, r, t, p, "locked")
	default:
		g.logger.Info("verify failed: code expired or replaced", g.eventFields(r, t, p.Email)...)
		g.backToSignIn(w, r, t, p, "expired")
	}
}

// issueSession sets the session cookie and sends the guest on to the link
// they first opened.
func (g *Gateway) issueSession(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, s flow.Session) {
	if err := g.setSession(w, r, t, s); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	if err := g.rememberDevice(w, r, t, s.Email); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	// A fresh nonce: nothing from before sign-in carries over.
	rd := safeRD(p.RD, t)
	if err := g.savePending(w, r, t, p.SignedIn(s.Email)); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	g.logger.Info("session issued", g.eventFields(r, t, s.Email, zap.Time("expires", s.Expiry()))...)
	http.Redirect(w, r, rd, http.StatusSeeOther)
}
