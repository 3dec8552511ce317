package emailotp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

// pageRenderer renders the gateway's pages: in the language the guest's
// browser asks for, with the tenant's display name and branding, and with the
// headers every gateway page carries. The code and invitation emails take the
// same names and looks from it.
type pageRenderer struct {
	set          *templates.Set
	displayNames tenantNames
	brandings    tenantBrandings
	logger       *zap.Logger
}

// newPageRenderer loads the templates (the embedded ones, overridden by
// dir's files).
func newPageRenderer(dir string, names tenantNames, looks tenantBrandings, logger *zap.Logger) (*pageRenderer, error) {
	set, err := templates.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return &pageRenderer{set: set, displayNames: names, brandings: looks, logger: logger}, nil
}

// tenantError answers a request whose tenant or path can't be read.
func (p *pageRenderer) tenantError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBadPath) {
		p.errorPage(w, r, tenant{Root: "/"}, http.StatusBadRequest, templates.BadLinkTitle, templates.BadPathText, nil)
		return
	}
	if errors.Is(err, errBadTenant) {
		p.errorPage(w, r, tenant{Root: "/"}, http.StatusBadRequest, templates.BadLinkTitle, templates.BadTenantText, nil)
		return
	}
	p.errorPage(w, r, tenant{Root: "/"}, http.StatusNotFound, templates.NoTenantTitle, templates.NoTenantText, nil)
}

// link is a way on from an error page: where, and the words on it.
type link struct {
	href string
	text templates.Message
}

// errorPage answers with a page that says, in the guest's language, what
// went wrong (title, text filled with vars) and offers at most one way on.
func (p *pageRenderer) errorPage(w http.ResponseWriter, r *http.Request, t tenant, status int, title, text templates.Message, vars templates.Vars, action ...link) {
	words := p.words(r)
	data := templates.PageData{Words: words, Heading: words.Say(title, vars), Message: words.Say(text, vars)}
	if len(action) > 0 {
		data.Action, data.ActionText = action[0].href, words.Say(action[0].text, nil)
	}
	p.page(w, r, t, status, templates.PageError, data)
}

// words are the sentences in the language the guest's browser asks for.
func (p *pageRenderer) words(r *http.Request) templates.Words {
	return p.set.Words(r.Header.Get("Accept-Language")).ForReading()
}

// internalError answers a step that could not be done. A store or queue
// that is full (flow.ErrBusy) is load being shed, not a fault: the guest is
// asked to come back in a minute.
func (p *pageRenderer) internalError(w http.ResponseWriter, r *http.Request, t tenant, err error) {
	if errors.Is(err, flow.ErrBusy) {
		p.busy(w, r, t, err, link{t.Base() + "signin", templates.ActionTryAgain})
		return
	}
	p.logger.Error("sign-in step failed", zap.String("tenant", t.ID), zap.String("path", r.URL.Path), zap.Error(err))
	p.errorPage(w, r, t, http.StatusServiceUnavailable, templates.UnavailableTitle, templates.UnavailableInternalText, nil,
		link{t.Base() + "signin", templates.ActionStartAgain})
}

// busy answers while the delivery queue or the memory store is full. It is
// 429, like the other limits, with Retry-After: under a flood these are the
// answers the flood gets, and a 5xx would page the operator for a server
// that is doing what it should.
func (p *pageRenderer) busy(w http.ResponseWriter, r *http.Request, t tenant, err error, again link) {
	p.logger.Warn("sign-in step refused: the gateway is at capacity", zap.String("tenant", t.ID), zap.String("path", r.URL.Path), zap.Error(err))
	w.Header().Set("Retry-After", "60")
	p.errorPage(w, r, t, http.StatusTooManyRequests, templates.BusyTitle, templates.BusyText, nil, again)
}

// notAllowed answers a method the page does not take: 405, with the
// methods it does in Allow.
func (p *pageRenderer) notAllowed(w http.ResponseWriter, r *http.Request, t tenant, allow string) {
	w.Header().Set("Allow", allow)
	p.errorPage(w, r, t, http.StatusMethodNotAllowed, templates.NotAllowedTitle, templates.NotAllowedText, nil)
}

// tenantName is the tenant's name on its pages and in its emails: its
// display name, or for a console the console's title in words's language
// (a tenant of the gateway's may be called "console" too).
func (p *pageRenderer) tenantName(key string, words templates.Words) string {
	if directory.IsConsole(key) {
		return words.Say(templates.ConsoleTitle, nil)
	}
	return p.displayNames.of(directory.TenantName(key))
}

// tenantBrand is the tenant's look: a console has the gateway-wide one.
func (p *pageRenderer) tenantBrand(key string) templates.Brand {
	if directory.IsConsole(key) {
		return p.brandings.of("")
	}
	return p.brandings.of(directory.TenantName(key))
}

// page renders a gateway page with the headers every auth page carries.
func (p *pageRenderer) page(w http.ResponseWriter, r *http.Request, t tenant, status int, name string, data templates.PageData) {
	data.Base = t.Base()
	if data.Words.Lang == "" {
		data.Words = p.words(r)
	}
	if t.ID != "" {
		data.Tenant = p.tenantName(t.Key, data.Words)
	}
	data.Brand = p.tenantBrand(t.Key)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", pagePolicy(data.Nonce, logoOrigin(data.Brand.Logo)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the page's own forms, and on plain HTTP (no
	// Sec-Fetch-Site header there) the cross-origin check could then not
	// tell them from another site's. Other sites still get no referrer.
	h.Set("Referrer-Policy", "same-origin")
	var buf strings.Builder
	if err := p.set.Page(&buf, name, data); err != nil {
		p.logger.Error("rendering page failed", zap.String("page", name), zap.Error(err))
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("500 Internal Server Error: the sign-in page could not be shown\n"))
		return
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(buf.String()))
	}
}

// pagePolicy is the Content-Security-Policy of a gateway page: nothing but
// its own inline styles, images from itself (and the tenant's logo origin),
// forms to itself, and with a nonce, its one script, which may only ask the
// gateway (connect-src 'self').
func pagePolicy(nonce, logo string) string {
	img := "img-src 'self' data:"
	if strings.HasPrefix(logo, "https://") {
		img += " " + logo
	}
	policy := "default-src 'none'; style-src 'unsafe-inline'; " + img + "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	if nonce == "" {
		return policy
	}
	return policy + "; script-src 'nonce-" + nonce + "'; connect-src 'self'"
}

// refusal is one way a sign-in can be refused: the error that says so, the
// funnel's reason and the guest's words.
type refusal struct {
	err    error
	reason string
	words  templates.Message
}

// refusals are the refusals of one way in, the first match winning.
type refusals []refusal

// of is the refusal err is, if any.
func (rs refusals) of(err error) (refusal, bool) {
	for _, r := range rs {
		if errors.Is(err, r.err) {
			return r, true
		}
	}
	return refusal{}, false
}
