package emailotp

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

// notMeToken is what the "this wasn't me" link carries.
type notMeToken struct {
	Email     string
	Challenge string // the code it cancels, and what makes it single-use
	Expires   int64  // Unix seconds
}

// notMeValidity is how long a "this wasn't me" link works after its code expires.
const notMeValidity = 24 * time.Hour

// The link's token is "<challenge id>~<expiry, base 36>~<address, base64url>~<tag>",
// the tag signing those and the tenant key: about 140 characters, short
// enough for one line of a plain-text email. The address is the recipient's
// own, so it needs no sealing; the tag stops anyone making or changing one.
const notMeSep = "~"

// notMeLinks make and read the "this wasn't me" links.
type notMeLinks struct {
	signer *flow.Signer
	now    func() time.Time
}

// link is the link of the code email that cancels the code.
func (n notMeLinks) link(c flow.CodeMail) (string, error) {
	if c.Base == "" {
		return "", nil
	}
	exp := strconv.FormatInt(c.ExpiresAt.Add(notMeValidity).Unix(), 36)
	addr := base64.RawURLEncoding.EncodeToString([]byte(c.To))
	token := strings.Join([]string{c.ChallengeID, exp, addr, n.signer.Sign(c.Tenant, c.ChallengeID, exp, addr)}, notMeSep)
	return c.Base + "notme?t=" + token, nil
}

// open reads the token of a "this wasn't me" request for tenant t.
func (n notMeLinks) open(t tenant, value string) (notMeToken, bool) {
	parts := strings.Split(value, notMeSep)
	if len(value) > 512 || len(parts) != 4 || !n.signer.Verify(parts[3], t.Key, parts[0], parts[1], parts[2]) {
		return notMeToken{}, false
	}
	exp, err1 := strconv.ParseInt(parts[1], 36, 64)
	addr, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || parts[0] == "" || n.now().Unix() >= exp {
		return notMeToken{}, false
	}
	return notMeToken{Email: string(addr), Challenge: parts[0], Expires: exp}, true
}

// getNotMe shows the confirmation; the change is a POST, never a GET (mail
// scanners open links).
func (g *Gateway) getNotMe(w http.ResponseWriter, r *http.Request, t tenant) {
	token := r.URL.Query().Get("t")
	tok, ok := g.notMe.open(t, token)
	if !ok {
		g.pages.errorPage(w, r, t, http.StatusBadRequest, templates.NotmeBadTitle, templates.NotmeBadText, nil)
		return
	}
	words := g.pages.words(r)
	g.pages.page(w, r, t, http.StatusOK, templates.PageNotMe, templates.PageData{
		Email: tok.Email, CSRF: g.csrf.token(t, notMeBinding(token)), Token: token, Words: words,
		Notice: words.Say(templates.NotmeNotice, templates.Vars{"Duration": words.Duration(time.Duration(g.Limits.NotMe))}),
	})
}

func (g *Gateway) postNotMe(w http.ResponseWriter, r *http.Request, t tenant) {
	form, err := readForm(w, r, "csrf", "t")
	if err != nil {
		g.formUnreadable(w, r, t, err)
		return
	}
	tok, ok := g.notMe.open(t, form["t"])
	if !ok {
		g.pages.errorPage(w, r, t, http.StatusBadRequest, templates.NotmeBadTitle, templates.NotmeBadText, nil)
		return
	}
	if !g.checkFormOrigin(w, r, t, notMeBinding(form["t"]), form["csrf"]) {
		return
	}
	until, err := g.service.NotMe(r.Context(), t.Key, tok.Email, tok.Challenge, time.Duration(g.CodeTTL)+notMeValidity)
	if errors.Is(err, flow.ErrNotMeUsed) || errors.Is(err, flow.ErrChallengeNotFound) {
		g.pages.errorPage(w, r, t, http.StatusGone, templates.NotmeUsedTitle, templates.NotmeUsedText, nil)
		return
	}
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	g.log.Warn("code reported as not requested; codes to the address stopped",
		g.log.fields(r, t, tok.Email, zap.Time("until", until))...)
	words := g.pages.words(r)
	g.pages.page(w, r, t, http.StatusOK, templates.PageError, templates.PageData{
		Words:   words,
		Heading: words.Say(templates.NotmeDoneTitle, nil),
		Message: words.Say(templates.NotmeDoneText, templates.Vars{"Email": tok.Email, "Wait": words.Wait(until.Sub(g.service.Now()))}),
	})
}

// notMeBinding is what the "this wasn't me" form's CSRF token is bound to:
// the link's token, as the page has no pending cookie of its own.
func notMeBinding(token string) string { return "notme:" + token }
