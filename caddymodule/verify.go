package emailotp

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

func (g *Gateway) getVerify(w http.ResponseWriter, r *http.Request, t tenant) {
	p, screen, err := g.codeScreen(r, t)
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	g.show(w, r, t, p, screen, http.StatusOK, "")
}

// codeScreen is this browser's pending sign-in and what flow says its
// enter-code step shows now; the page and …/status both answer from it.
func (g *Gateway) codeScreen(r *http.Request, t tenant) (flow.Pending, flow.Screen, error) {
	p, _ := g.pending.load(r, t, "")
	ch, err := g.service.Pending(r.Context(), t.Key, p.Challenge)
	if err != nil && !errors.Is(err, flow.ErrChallengeNotFound) {
		return p, flow.Screen{}, err
	}
	return p, p.CodeScreen(ch, err == nil, g.service.Now()), nil
}

// show answers with the screen flow chose: the enter-code page (with
// fieldError, if any, next to the field) or the way back to sign-in.
func (g *Gateway) show(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, s flow.Screen, status int, fieldError string) {
	if s.Step != flow.StepEnterCode {
		g.backToSignIn(w, r, t, p, s.Notice)
		return
	}
	ch := s.Challenge
	words := g.pages.words(r)
	data := templates.PageData{
		CSRF:       g.csrf.token(t, p.Nonce),
		RD:         safeRD(p.RD, t),
		Email:      p.Email,
		TriesLeft:  ch.TriesLeft(),
		CodeLength: g.service.CodeLength(),
		CodeTTL:    time.Duration(g.CodeTTL),
		FieldError: fieldError,
		Delivery:   string(ch.Delivery.View()),
		Passkeys:   g.passkeys != nil,
		Words:      words,
	}
	if now := g.service.Now(); p.HeldAt(now) {
		data.HeldWait = words.Wait(time.Unix(p.HeldUntil, 0).Sub(now))
	} else if ch.Delivery.View() != flow.ViewFailed {
		// The page asks …/status how the code gets on and says so in place:
		// no reload, so nothing the guest typed is lost.
		data.Polls = true
	}
	if data.Polls || data.Passkeys {
		data.Nonce = flow.RandomToken()
	}
	g.pages.page(w, r, t, status, templates.PageVerify, data)
}

func (g *Gateway) backToSignIn(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, n flow.Notice) {
	target := t.Base() + "signin?rd=" + url.QueryEscape(safeRD(p.RD, t))
	if n != flow.NoticeNone {
		target += "&reason=" + string(n)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (g *Gateway) postVerify(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "code", link{t.Base() + "verify", templates.ActionEnterCodeAgain})
	if !ok {
		return
	}
	if !p.Waiting(g.service.Now()) {
		g.backToSignIn(w, r, t, p, flow.NoticeNone)
		return
	}
	g.verifyCode(w, r, t, p, form["code"])
}

// verifyCode checks a code for this browser's sign-in under way, typed or
// carried by the one-tap link, and answers with the next step.
func (g *Gateway) verifyCode(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, code string) {
	res, err := g.service.Verify(r.Context(), t.Key, p.Challenge, code)
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	screen := p.AfterVerify(res)
	if name, ok := verifyEvents[res.Outcome]; ok {
		g.log.step(r, t, name, "", cmp.Or(res.Email, p.Email))
	}
	switch res.Outcome {
	case flow.WrongCode:
		g.log.Info("verify failed: wrong code", g.log.fields(r, t, res.Email, zap.Int("tries_left", res.TriesLeft))...)
	case flow.Locked:
		g.log.Warn("verify failed: code locked after too many wrong tries", g.log.fields(r, t, res.Email)...)
	case flow.Expired:
		g.log.Info("verify failed: code expired or replaced", g.log.fields(r, t, p.Email)...)
	}
	switch screen.Step {
	case flow.StepConsent:
		if err := g.pending.save(w, r, t, p); err != nil {
			g.pages.internalError(w, r, t, err)
			return
		}
		g.log.Info("code verified; asking for consent", g.log.fields(r, t, res.Email)...)
		http.Redirect(w, r, t.Base()+"consent", http.StatusSeeOther)
	case flow.StepSession:
		g.issueSession(w, r, t, p, res.Session)
	case flow.StepEnterCode:
		words := g.pages.words(r)
		msg := words.Count(templates.WrongCode, res.TriesLeft, nil)
		if res.Outcome == flow.Malformed {
			msg = words.Count(templates.MalformedCode, g.service.CodeLength(), nil)
		}
		g.show(w, r, t, p, screen, http.StatusUnprocessableEntity, msg)
	default:
		g.backToSignIn(w, r, t, p, screen.Notice)
	}
}

// issueSession sets the session cookie and sends the guest on to the link
// they first opened, or, after a code, to the passkey offer where this
// browser can make one.
func (g *Gateway) issueSession(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, s flow.Session) {
	rd, err := g.startSession(w, r, t, p, s)
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	if g.passkeys != nil && s.Method == "" && r.PostFormValue("passkey_ready") == "1" && g.devices.offersPasskey(r, t, s.Email) {
		rd = t.Base() + "passkey?rd=" + url.QueryEscape(rd)
	}
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// startSession sets the session cookie and the cookies that go with it, and
// returns where the guest lands.
func (g *Gateway) startSession(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, s flow.Session) (string, error) {
	if err := g.sessions.set(w, r, t, s); err != nil {
		return "", err
	}
	if err := g.devices.remember(w, r, t, s.Email); err != nil {
		return "", err
	}
	// A fresh nonce: nothing from before sign-in carries over.
	rd := safeRD(p.RD, t)
	if err := g.pending.save(w, r, t, p.SignedIn(s.Email)); err != nil {
		return "", err
	}
	g.log.Info("session issued", g.log.fields(r, t, s.Email, zap.Time("expires", s.Expiry()), zap.String("method", cmp.Or(s.Method, AuthMethod)))...)
	return rd, nil
}

// verifyEvents are the funnel's names for a verify's outcomes (a malformed
// code used no try and counts as none).
var verifyEvents = map[flow.Outcome]string{
	flow.Verified: "verified", flow.WrongCode: "wrong_code", flow.Locked: "locked", flow.Expired: "code_dead",
}
