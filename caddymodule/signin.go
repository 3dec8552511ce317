package emailotp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

// askToSignIn answers a protected request that has no valid session.
func (g *Gateway) askToSignIn(w http.ResponseWriter, r *http.Request, t tenant) {
	signin := t.Base() + "signin?rd=" + url.QueryEscape(r.URL.RequestURI())
	if wantsHTML(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, signin, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Email-OTP realm="`+strings.ReplaceAll(t.ID, `"`, "")+`", signin="`+t.Base()+`signin"`)
	if wantsHTML(r) {
		g.pages.errorPage(w, r, t, http.StatusUnauthorized, templates.PleaseSignInTitle, templates.PleaseSignInText, nil, link{signin, templates.ActionSignIn})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	neverFramed(w.Header())
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 Unauthorized: sign in at " + t.Base() + "signin\n"))
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// noticeWords are the words for why a guest is back at the sign-in page.
var noticeWords = map[flow.Notice]templates.Message{
	flow.NoticeExpired: templates.NoticeExpired,
	flow.NoticeLocked:  templates.NoticeLocked,
}

func (g *Gateway) getSignIn(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.pending.load(r, t, "")
	q := r.URL.Query()
	email := p.Email
	if hint, err := flow.ParseAddress(q.Get("email")); err == nil {
		email = hint // an invitation link names the invited address
	} else if q.Get("change") != "" {
		email = ""
	}
	if !fromAnotherSite(r) {
		p.Restart()
	}
	notice := flow.ParseNotice(q.Get("reason"))
	if err := g.pending.save(w, r, t, p); err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	g.log.step(r, t, "page_shown", "", email)
	g.pages.page(w, r, t, http.StatusOK, templates.PageSignIn, templates.PageData{
		CSRF:       g.csrf.token(t, p.Nonce),
		RD:         safeRD(q.Get("rd"), t),
		Email:      email,
		Notice:     g.notice(r, notice),
		NoticeWarn: notice == flow.NoticeLocked,
		Trouble:    g.queue.Troubled(),
		Passkeys:   g.passkeys != nil,
		Nonce:      g.passkeyScriptNonce(),
	})
}

// passkeyScriptNonce is the CSP nonce of the sign-in page's passkey script,
// "" (no script) when passkeys are off.
func (g *Gateway) passkeyScriptNonce() string {
	if g.passkeys == nil {
		return ""
	}
	return flow.RandomToken()
}

// fromAnotherSite reports whether the browser says another site (or a
// sibling host) led it here. Such a GET shows the sign-in page but does not
// end the sign-in under way: any site can send a browser to the sign-in page,
// and the code being typed in another tab must still work. Browsers that
// say nothing (plain HTTP on a public name) are taken at their word.
func fromAnotherSite(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "cross-site" || site == "same-site"
}

func (g *Gateway) postSend(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "email", link{t.Base() + "signin", templates.ActionGoToSignin})
	if !ok {
		return
	}
	rd := safeRD(r.PostForm.Get("rd"), t)
	if g.federation != nil {
		if addr, err := flow.ParseAddress(form["email"]); err == nil && g.federation.send(w, r, t, p, addr, rd) {
			return
		}
	}
	g.warnLooseProxies(r)
	// Delivery starts once this answer is out (see flow.Envelope.AfterAnswer).
	answered := make(chan struct{})
	defer close(answered)
	res, err := g.service.Send(r.Context(), flow.SendRequest{
		Tenant:    t.Key,
		Email:     form["email"],
		Resource:  mailResourceOf(t, rd),
		Host:      g.links.codeHost(r, t),
		Base:      g.links.endpoints(r, t),
		Language:  r.Header.Get("Accept-Language"),
		ClientIP:  clientIP(r),
		UserAgent: r.UserAgent(),
		Browser:   p.Nonce,
		Devices:   g.devices.load(r, t),

		AfterAnswer: answered,
	})
	switch {
	case errors.Is(err, flow.ErrInvalidAddress):
		g.pages.page(w, r, t, http.StatusUnprocessableEntity, templates.PageSignIn, templates.PageData{
			CSRF: form["csrf"], RD: rd, Email: templates.OneLine(truncate(form["email"], 254)),
			FieldError: addressProblem(g.pages.words(r), err),
			Trouble:    g.queue.Troubled(),
		})
		return
	case errors.Is(err, flow.ErrNotPermitted):
		g.log.step(r, t, "code_requested", "", res.Email)
		g.log.step(r, t, "code_denied", "", res.Email)
		g.log.Info("code not sent: address may not sign in (revealed)", g.log.fields(r, t, res.Email)...)
		g.pages.page(w, r, t, http.StatusForbidden, templates.PageSignIn, templates.PageData{
			CSRF: form["csrf"], RD: rd, Email: res.Email,
			FieldError: g.pages.words(r).Say(templates.NotPermitted, templates.Vars{"Email": res.Email, "Tenant": g.pages.tenantName(t.Key, g.pages.words(r))}),
		})
		return
	case errors.Is(err, flow.ErrBusy):
		mailEvents.WithLabelValues(g.modules.mailerName, tenantLabel(t.ID), "refused").Inc()
		g.pages.busy(w, r, t, err, link{t.Base() + "signin?rd=" + url.QueryEscape(rd), templates.ActionTryAgain})
		return
	case errors.Is(err, flow.ErrRateLimited):
		var rl flow.RateLimitError
		errors.As(err, &rl)
		g.log.step(r, t, "rate_limited", rl.Scope, "")
		g.rateLimited(w, r, t, rl, rd)
		return
	case err != nil:
		g.pages.internalError(w, r, t, err)
		return
	}
	g.log.step(r, t, "code_requested", "", res.Email)
	if !res.Held.IsZero() {
		g.log.step(r, t, "code_held", res.HeldWhy, res.Email)
		// Answered as a send, for every address alike; a challenge this
		// browser already waits on for the address stays.
		g.log.Info("code not sent: held by a limit", g.log.fields(r, t, res.Email, zap.String("why", res.HeldWhy), zap.Time("until", res.Held))...)
		p.Sent(res, rd)
		if err := g.pending.save(w, r, t, p); err != nil {
			g.pages.internalError(w, r, t, err)
			return
		}
		http.Redirect(w, r, t.Base()+"verify", http.StatusSeeOther)
		return
	}
	if res.Permitted {
		g.log.step(r, t, "code_sent", "", res.Challenge.Email)
		g.log.Info("code queued", g.log.fields(r, t, res.Challenge.Email)...)
	} else {
		g.log.step(r, t, "code_denied", "", res.Challenge.Email)
		g.log.Info("code not sent: address may not sign in", g.log.fields(r, t, res.Challenge.Email)...)
	}
	p.Sent(res, rd)
	if err := g.pending.save(w, r, t, p); err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	http.Redirect(w, r, t.Base()+"verify", http.StatusSeeOther)
	_ = http.NewResponseController(w).Flush()
}

// addressProblem is what the guest reads next to the field for an address
// flow refused.
func addressProblem(words templates.Words, err error) string {
	var ae *flow.AddressError
	if !errors.As(err, &ae) {
		return words.AddressProblem("", "")
	}
	return words.AddressProblem(string(ae.Reason), ae.Detail)
}

// notice is the sentence for why the guest is back at the sign-in page.
func (g *Gateway) notice(r *http.Request, n flow.Notice) string {
	if id, ok := noticeWords[n]; ok {
		return g.pages.words(r).Say(id, nil)
	}
	return ""
}
