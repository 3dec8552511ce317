package emailotp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/passkey"
	"github.com/otpgate/caddy-email-otp/templates"
)

// Passkeys for returning guests. After a code sign-in in a browser that can
// make one (its page said so), the guest is offered, once and skippably, a
// passkey for this tenant; "not now" holds for 30 days in this browser.
// Next time the sign-in page signs them in with it: no address typed, no
// mail. A passkey belongs to one tenant and one address, is named by a
// random user handle, and meets the same policy at every sign-in as a code
// does. The ceremonies (a begun sign-in or enrolment) live in the store for
// five minutes, single use, and are named in the pending cookie of the
// browser that began them: another browser can't finish them, and another
// node can.

// passkeyDesk is the passkey part of a gateway: the offer page and the
// JSON ceremonies the pages' script runs.
type passkeyDesk struct {
	store   flow.Store
	guests  *guestBook
	service *flow.Service
	pages   *pageRenderer
	pending pendingCookies
	devices deviceMarkers
	csrf    csrfKey
	log     signInLog
	clock   flow.Clock
	// session is the gateway's session check, start its session issue.
	session func(r *http.Request, t tenant) (flow.Session, directory.Guest, bool, error)
	start   func(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, s flow.Session) (string, error)
}

// maxPasskeyAnswer bounds a browser's answer to a ceremony: a few hundred
// bytes for a sign-in, a few kilobytes for an enrolment with an RSA key.
const maxPasskeyAnswer = 16 << 10

// csrfHeader carries the page's CSRF token on the ceremonies' requests.
const csrfHeader = "X-Csrf-Token"

func (d *passkeyDesk) site(r *http.Request, t tenant) passkey.Site {
	// The browser's own origin: it is what the browser signs, whatever
	// base_url says the emails link to.
	return passkey.Site{Origin: origin(r), Name: d.pages.tenantName(t.Key, d.pages.words(r))}
}

// getOffer shows the offer to a guest just signed in by code.
func (d *passkeyDesk) getOffer(w http.ResponseWriter, r *http.Request, t tenant) {
	rd := safeRD(r.URL.Query().Get("rd"), t)
	s, _, ok, err := d.session(r, t)
	if err != nil {
		d.pages.internalError(w, r, t, err)
		return
	}
	if !ok {
		http.Redirect(w, r, t.Base()+"signin?rd="+url.QueryEscape(rd), http.StatusSeeOther)
		return
	}
	if s.Method == flow.MethodPasskey || !d.devices.offersPasskey(r, t, s.Email) {
		http.Redirect(w, r, rd, http.StatusSeeOther)
		return
	}
	p, _ := d.pending.load(r, t, "")
	if err := d.pending.save(w, r, t, p); err != nil {
		d.pages.internalError(w, r, t, err)
		return
	}
	d.log.step(r, t, "passkey_offered", "", s.Email)
	d.pages.page(w, r, t, http.StatusOK, templates.PagePasskey, templates.PageData{
		CSRF: d.csrf.token(t, p.Nonce), RD: rd, Email: s.Email, Nonce: flow.RandomToken(),
	})
}

// postNotNow is the offer's "not now": asked again in this browser in 30 days.
func (d *passkeyDesk) postNotNow(w http.ResponseWriter, r *http.Request, t tenant) {
	form, ok := d.readForm(w, r, t)
	if !ok {
		return
	}
	rd := safeRD(form["rd"], t)
	s, _, ok, err := d.session(r, t)
	if err != nil {
		d.pages.internalError(w, r, t, err)
		return
	}
	if ok {
		if err := d.devices.notNow(w, r, t, s.Email); err != nil {
			d.pages.internalError(w, r, t, err)
			return
		}
		d.log.step(r, t, "passkey_declined", "", s.Email)
	}
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// readForm reads the offer's form; on failure it has answered.
func (d *passkeyDesk) readForm(w http.ResponseWriter, r *http.Request, t tenant) (map[string]string, bool) {
	form, err := readForm(w, r, "csrf", "rd")
	if err != nil {
		d.pages.errorPage(w, r, t, http.StatusBadRequest, templates.FormUnreadableTitle, templates.FormUnreadableText, nil)
		return nil, false
	}
	p, _ := d.pending.load(r, t, form["csrf"])
	if !d.csrf.fromThisBrowser(r, t, p.Nonce, form["csrf"]) {
		d.pages.errorPage(w, r, t, http.StatusForbidden, templates.FormExpiredTitle, templates.FormExpiredText, nil,
			link{safeRD(form["rd"], t), templates.ActionContinue})
		return nil, false
	}
	return form, true
}

// ceremonyRequest checks a ceremony's request (this tenant's page, this
// browser's CSRF token) and returns the browser's pending state; on failure
// it has answered.
func (d *passkeyDesk) ceremonyRequest(w http.ResponseWriter, r *http.Request, t tenant) (flow.Pending, bool) {
	if !jsonForOwnPages(w, r, t) {
		return flow.Pending{}, false
	}
	token := r.Header.Get(csrfHeader)
	p, _ := d.pending.load(r, t, token)
	if !d.csrf.fromThisBrowser(r, t, p.Nonce, token) {
		d.answer(w, r, http.StatusForbidden, templates.PasskeyPageOld)
		return p, false
	}
	return p, true
}

// answer is a ceremony's refusal, in the guest's words.
func (d *passkeyDesk) answer(w http.ResponseWriter, r *http.Request, status int, m templates.Message) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": d.pages.words(r).Say(m, nil)})
}

// begin keeps ceremony c for this browser and answers with the options.
func (d *passkeyDesk) begin(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, options []byte, c passkey.Ceremony) {
	state, err := c.Marshal()
	if err == nil {
		id := flow.RandomToken()
		if err = d.store.SaveCeremony(r.Context(), id, state, d.clock.Now().Add(passkey.Lifetime)); err == nil {
			p.Ceremony = id
			err = d.pending.save(w, r, t, p)
		}
	}
	if errors.Is(err, flow.ErrBusy) {
		d.answer(w, r, http.StatusServiceUnavailable, templates.PasskeyBusy)
		return
	}
	if err != nil {
		d.failed(w, r, t, err)
		return
	}
	_, _ = w.Write(options)
}

// finish takes this browser's ceremony and reads the browser's answer.
func (d *passkeyDesk) finish(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, enrol bool) (passkey.Ceremony, []byte, bool) {
	answer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPasskeyAnswer))
	if err != nil {
		d.answer(w, r, http.StatusBadRequest, templates.PasskeyFailed)
		return passkey.Ceremony{}, nil, false
	}
	var c passkey.Ceremony
	state, err := d.store.TakeCeremony(r.Context(), p.Ceremony, d.clock.Now())
	if err == nil {
		c, err = passkey.ParseCeremony(state)
	}
	switch {
	case p.Ceremony == "" || errors.Is(err, flow.ErrChallengeNotFound) || err == nil && (c.Enrol != enrol || c.Tenant != t.Key):
		d.answer(w, r, http.StatusBadRequest, templates.PasskeyTooSlow)
		return c, nil, false
	case err != nil:
		d.failed(w, r, t, err)
		return c, nil, false
	}
	return c, answer, true
}

func (d *passkeyDesk) failed(w http.ResponseWriter, r *http.Request, t tenant, err error) {
	d.log.Error("passkey ceremony failed", zap.String("tenant", t.ID), zap.Error(err))
	d.answer(w, r, http.StatusServiceUnavailable, templates.PasskeyUnavailable)
}

// done answers a finished ceremony: where the page goes now.
func done(w http.ResponseWriter, rd string) {
	_ = json.NewEncoder(w).Encode(map[string]string{"go": rd})
}

// postSignInOptions begins a passkey sign-in.
func (d *passkeyDesk) postSignInOptions(w http.ResponseWriter, r *http.Request, t tenant) {
	p, ok := d.ceremonyRequest(w, r, t)
	if !ok {
		return
	}
	options, c, err := passkey.BeginSignIn(d.site(r, t), t.Key)
	if err != nil {
		d.failed(w, r, t, err)
		return
	}
	d.begin(w, r, t, p, options, c)
}

// passkeyRefusals are how a passkey sign-in can be refused after the
// browser answered: the funnel's reason and the guest's words.
var passkeyRefusals = refusals{
	{passkey.ErrUnknownPasskey, "unknown", templates.PasskeyUnknown},
	{directory.ErrNoPasskey, "unknown", templates.PasskeyUnknown},
	{directory.ErrNotFound, "unknown", templates.PasskeyUnknown},
	{flow.ErrPasskeyVoid, "void", templates.PasskeyVoid},
	{directory.ErrNotRedeemed, "void", templates.PasskeyVoid},
	{directory.ErrRevoked, "denied", templates.PasskeyDenied},
	{flow.ErrNotPermitted, "denied", templates.PasskeyDenied},
	{directory.ErrPasskeyCloned, "cloned", templates.PasskeyFailed},
	{passkey.ErrRefused, "failed", templates.PasskeyFailed},
}

// postSignIn finishes a passkey sign-in: the WebAuthn checks, then the
// same policy as a code sign-in, then the session.
func (d *passkeyDesk) postSignIn(w http.ResponseWriter, r *http.Request, t tenant) {
	p, ok := d.ceremonyRequest(w, r, t)
	if !ok {
		return
	}
	c, answer, ok := d.finish(w, r, t, p, false)
	if !ok {
		return
	}
	acct, use, err := passkey.FinishSignIn(d.site(r, t), c, answer, func(handle []byte) (passkey.Account, error) {
		g, err := d.guests.PasskeyOwner(r.Context(), t.Key, handle)
		switch {
		case err != nil:
		case g.Status == directory.Revoked:
			// A revocation removed the passkeys: say why, not "unknown".
			err = directory.ErrRevoked
		case g.Status != directory.Redeemed:
			err = flow.ErrPasskeyVoid // reset: the mailbox is proved again first
		}
		return passkey.AccountOf(g, ""), err
	})
	var s flow.Session
	if err == nil {
		s, err = d.service.PasskeySignIn(r.Context(), t.Key, acct.Email, use)
	}
	if err != nil {
		d.refuse(w, r, t, acct.Email, err)
		return
	}
	p.RD = safeRD(r.URL.Query().Get("rd"), t)
	rd, err := d.start(w, r, t, p, s)
	if err != nil {
		d.failed(w, r, t, err)
		return
	}
	d.log.step(r, t, "passkey_signed_in", "", s.Email)
	done(w, rd)
}

// refuse answers a passkey sign-in refused after the browser answered.
func (d *passkeyDesk) refuse(w http.ResponseWriter, r *http.Request, t tenant, email string, err error) {
	if why, ok := passkeyRefusals.of(err); ok {
		d.log.step(r, t, "passkey_refused", why.reason, email)
		if why.reason == "cloned" {
			d.log.Warn("passkey refused: its signature counter went back, so the credential may have been copied; "+
				"the guest signs in with a code (delete the passkey if it happens again)", d.log.fields(r, t, email)...)
		} else {
			d.log.Info("passkey refused", d.log.fields(r, t, email, zap.String("reason", why.reason), zap.Error(err))...)
		}
		d.answer(w, r, http.StatusForbidden, why.words)
		return
	}
	d.failed(w, r, t, err)
}

// enrolmentRequest checks a request of a ceremony that makes a passkey (as
// ceremonyRequest, and signed in) and returns the browser's pending state,
// the session and the guest's record; on failure it has answered.
func (d *passkeyDesk) enrolmentRequest(w http.ResponseWriter, r *http.Request, t tenant) (flow.Pending, flow.Session, directory.Guest, bool) {
	p, ok := d.ceremonyRequest(w, r, t)
	if !ok {
		return p, flow.Session{}, directory.Guest{}, false
	}
	s, g, ok, err := d.session(r, t)
	if err != nil {
		d.failed(w, r, t, err)
		return p, s, g, false
	}
	if !ok {
		d.answer(w, r, http.StatusUnauthorized, templates.PasskeyPageOld)
		return p, s, g, false
	}
	return p, s, g, true
}

// postEnrolOptions begins making a passkey for the signed-in guest.
func (d *passkeyDesk) postEnrolOptions(w http.ResponseWriter, r *http.Request, t tenant) {
	p, s, g, ok := d.enrolmentRequest(w, r, t)
	if !ok {
		return
	}
	handle, err := d.guests.PasskeyHandle(r.Context(), t.Key, s.Email, d.clock.Now())
	if err != nil {
		d.refuse(w, r, t, s.Email, err)
		return
	}
	acct := passkey.AccountOf(g, d.pages.tenantName(t.Key, d.pages.words(r)))
	acct.Handle = handle // the record read with the session may predate it
	options, c, err := passkey.BeginEnrolment(d.site(r, t), t.Key, acct)
	if err != nil {
		d.failed(w, r, t, err)
		return
	}
	d.begin(w, r, t, p, options, c)
}

// postEnrol finishes making a passkey and records it on the guest.
func (d *passkeyDesk) postEnrol(w http.ResponseWriter, r *http.Request, t tenant) {
	p, s, g, ok := d.enrolmentRequest(w, r, t)
	if !ok {
		return
	}
	c, answer, ok := d.finish(w, r, t, p, true)
	if !ok {
		return
	}
	if c.Email != s.Email {
		// Begun under another session of this browser.
		d.answer(w, r, http.StatusBadRequest, templates.PasskeyTooSlow)
		return
	}
	now := d.clock.Now()
	browser, system := browserName(r.UserAgent())
	// The handle is the one the ceremony began with (kept in the store);
	// this node's copy of the record may not know it yet.
	acct := passkey.AccountOf(g, "")
	acct.Handle = c.Session.UserID
	pk, err := passkey.FinishEnrolment(d.site(r, t), acct, c, answer, deviceName(browser, system), now)
	if err == nil {
		_, err = d.guests.AddPasskey(r.Context(), t.Key, s.Email, c.Session.UserID, pk, now)
	}
	switch {
	case errors.Is(err, passkey.ErrRefused):
		d.log.Info("passkey not made", d.log.fields(r, t, s.Email, zap.Error(err))...)
		d.answer(w, r, http.StatusBadRequest, templates.PasskeyFailed)
		return
	case errors.Is(err, directory.ErrTooManyPasskeys):
		d.answer(w, r, http.StatusConflict, templates.PasskeyTooMany)
		return
	case err != nil:
		d.refuse(w, r, t, s.Email, err)
		return
	}
	announceGuestChange(r.Context(), d.log.Logger, t.Key, s.Email)
	if err := d.devices.passkeyMade(w, r, t, s.Email); err != nil {
		d.failed(w, r, t, err)
		return
	}
	d.log.step(r, t, "passkey_enrolled", "", s.Email)
	done(w, safeRD(r.URL.Query().Get("rd"), t))
}

// deviceName names a passkey for the guest and operators: "Chrome on
// Android", from a fixed list, never the User-Agent's own words.
func deviceName(browser, system string) string {
	switch {
	case browser == "":
		return "a browser"
	case system == "":
		return browser
	}
	return browser + " on " + system
}
