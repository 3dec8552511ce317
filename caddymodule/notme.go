package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

// notMeToken is what the "this wasn't me" link carries, sealed.
type notMeToken struct {
	Tenant    string `json:"t"`
	Email     string `json:"e"`
	Challenge string `json:"c"` // the code it cancels, and what makes it single-use
	Expires   int64  `json:"x"`
}

// notMeValidity is how long a "this wasn't me" link works after its code expires.
const notMeValidity = 24 * time.Hour

// notMeLink is the link of the code email that cancels the code.
func (g *Gateway) notMeLink(c flow.CodeMail) (string, error) {
	if c.Base == "" {
		return "", nil
	}
	v, err := g.notMe.Seal("notme", notMeToken{Tenant: c.Tenant, Email: c.To, Challenge: c.ChallengeID, Expires: c.ExpiresAt.Add(notMeValidity).Unix()})
	if err != nil {
		return "", err
	}
	return c.Base + "notme?t=" + url.QueryEscape(v), nil
}

// openNotMe reads the token of a "this wasn't me" request for tenant t.
func (g *Gateway) openNotMe(t tenant, value string) (notMeToken, bool) {
	var tok notMeToken
	if len(value) > maxCookieLen || g.notMe.Open("notme", value, &tok) != nil || tok.Tenant != t.ID || tok.Challenge == "" || g.service.Now().Unix() >= tok.Expires {
		return notMeToken{}, false
	}
	return tok, true
}

// getNotMe shows the confirmation; the change is a POST, never a GET (mail
// scanners open links).
func (g *Gateway) getNotMe(w http.ResponseWriter, r *http.Request, t tenant) {
	token := r.URL.Query().Get("t")
	tok, ok := g.openNotMe(t, token)
	if !ok {
		g.errorPage(w, r, t, http.StatusBadRequest, "This link does not work",
			"The link is incomplete or too old. If you keep getting codes you did not ask for, you can ignore them: without the code nobody can sign in as you.")
		return
	}
	g.page(w, r, t, http.StatusOK, templates.PageNotMe, templates.PageData{
		Email: tok.Email, CSRF: g.csrfToken(t, "notme:"+token), Token: token,
		Notice: fmt.Sprintf("We will cancel the code and send no codes to this address for %s.", templates.Duration("en", time.Duration(g.Limits.NotMe))),
	})
}

func (g *Gateway) postNotMe(w http.ResponseWriter, r *http.Request, t tenant) {
	form, err := readForm(w, r, "csrf", "t")
	if err != nil {
		g.errorPage(w, r, t, http.StatusBadRequest, "The form was not understood", sentence(err.Error()))
		return
	}
	tok, ok := g.openNotMe(t, form["t"])
	if !ok {
		g.errorPage(w, r, t, http.StatusBadRequest, "This link does not work", "The link is incomplete or too old.")
		return
	}
	if !g.checkFormOrigin(w, r, t, "notme:"+form["t"], form["csrf"]) {
		return
	}
	until, err := g.service.NotMe(r.Context(), t.ID, tok.Email, tok.Challenge, time.Duration(g.CodeTTL)+notMeValidity)
	if errors.Is(err, flow.ErrNotMeUsed) || errors.Is(err, flow.ErrChallengeNotFound) {
		g.errorPage(w, r, t, http.StatusGone, "This link was used already",
			"Codes to this address were stopped when the link was first used. If you keep getting codes you did not ask for, you can ignore them: without the code nobody can sign in as you.")
		return
	}
	if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	g.logger.Warn("code reported as not requested; codes to the address stopped",
		g.eventFields(r, t, tok.Email, zap.Time("until", until))...)
	g.page(w, r, t, http.StatusOK, templates.PageError, templates.PageData{
		Heading: "Thank you",
		Message: fmt.Sprintf("The code was cancelled, and no codes will be sent to %s until %s. Nobody can sign in as you without a code.",
			tok.Email, until.UTC().Format("15:04 MST")),
	})
}
