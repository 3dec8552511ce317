package emailotp

import (
	"net/http"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

// The one-tap link: the code email's second way in, the code's twin. Its
// token is the challenge id and the code, sealed for the tenant, and it
// rides in the link's fragment (…/tap#t=…), which browsers never send: no
// server log, proxy or Referer sees it. Mail scanners open every link, so
// opening it decides nothing: the page, in the browser whose pending cookie
// holds that challenge, asks for one tap, and the POST verifies the code as
// if it were typed (same tries, same expiry; using either ends both).
// Anywhere else the page says to open the link where the code was asked
// for, and nothing is used up.

// tapLinks make and read the one-tap links' tokens.
type tapLinks struct{ sealer *flow.Sealer }

const tapSealName = "tap"

// tapToken is what the link carries.
type tapToken struct {
	Challenge string `json:"c"`
	Code      string `json:"k"`
}

// link is the one-tap link of a code email; "" where the email has no links.
func (l tapLinks) link(c flow.CodeMail) (string, error) {
	if c.Base == "" {
		return "", nil
	}
	v, err := l.sealer.Seal(flow.SealName(tapSealName, c.Tenant), tapToken{Challenge: c.ChallengeID, Code: c.Code})
	if err != nil {
		return "", err
	}
	return c.Base + "tap#t=" + v, nil
}

// open reads a token of tenant t.
func (l tapLinks) open(t tenant, value string) (tapToken, bool) {
	var tok tapToken
	if len(value) > 1024 || l.sealer.Open(flow.SealName(tapSealName, t.Key), value, &tok) != nil || tok.Challenge == "" {
		return tapToken{}, false
	}
	return tok, true
}

// getTap shows the confirmation to the browser that asked for the code, and
// to any other (a scanner, another device) the way to where it works.
func (g *Gateway) getTap(w http.ResponseWriter, r *http.Request, t tenant) {
	p, screen, err := g.codeScreen(r, t)
	if err != nil {
		g.pages.internalError(w, r, t, err)
		return
	}
	if screen.Step != flow.StepEnterCode {
		// No code of this browser is live: a scanner, another device, or a
		// code already used, replaced or out of tries.
		g.tapElsewhere(w, r, t)
		return
	}
	g.pages.page(w, r, t, http.StatusOK, templates.PageTap, templates.PageData{
		Email: p.Email, CSRF: g.csrf.token(t, p.Nonce), Nonce: flow.RandomToken(), Passkeys: g.passkeys != nil,
	})
}

// postTap verifies the link's code for this browser's sign-in under way.
func (g *Gateway) postTap(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "t", link{t.Base() + "verify", templates.ActionEnterCodeAgain})
	if !ok {
		return
	}
	tok, ok := g.taps.open(t, form["t"])
	if !ok {
		g.pages.errorPage(w, r, t, http.StatusBadRequest, templates.TapBadTitle, templates.TapBadText, nil,
			link{t.Base() + "verify", templates.ActionEnterCodeAgain})
		return
	}
	if tok.Challenge != p.Challenge || !p.Waiting(g.service.Now()) {
		// Another browser's link, or an older code's: it counts no try.
		g.tapElsewhere(w, r, t)
		return
	}
	g.verifyCode(w, r, t, p, tok.Code)
}

// tapElsewhere answers a one-tap link opened away from the sign-in it
// belongs to. It is 200: a scanner that opens it has done nothing wrong,
// and the page is the answer.
func (g *Gateway) tapElsewhere(w http.ResponseWriter, r *http.Request, t tenant) {
	g.pages.errorPage(w, r, t, http.StatusOK, templates.TapElsewhereTitle, templates.TapElsewhereText, nil)
}
