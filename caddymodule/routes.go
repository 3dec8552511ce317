package emailotp

import (
	"net/http"
	"strings"

	"github.com/otpgate/caddy-email-otp/templates"
)

// endpoint is one of the gateway's own pages under <tenant root>/.email-otp/:
// what answers GET (and HEAD) and what answers POST.
type endpoint struct {
	get, post func(http.ResponseWriter, *http.Request, tenant)
	allow     string // the Allow header for other methods
}

// endpointTable is built once, at provision.
func (g *Gateway) endpointTable() map[string]endpoint {
	table := map[string]endpoint{
		"signin":    {get: g.getSignIn},
		"send":      {post: g.postSend},
		"verify":    {get: g.getVerify, post: g.postVerify},
		"status":    {get: g.getStatus},
		"jwks.json": {get: g.getJWKS},
		"healthz":   {get: g.getHealthz},
		"signout":   {get: g.getSignOut, post: g.postSignOut},
		"consent":   {get: g.getConsent, post: g.postConsent},
		"notme":     {get: g.getNotMe, post: g.postNotMe},
		"tap":       {get: g.getTap, post: g.postTap},
		"session":   {get: g.getSession},
		"outbox":    {get: g.serveOutbox},
	}
	if d := g.federation; d != nil {
		table["oidc/callback"] = endpoint{get: d.getCallback}
	}
	if d := g.passkeys; d != nil {
		table["passkey"] = endpoint{get: d.getOffer, post: d.postNotNow}
		table["passkey/signin-options"] = endpoint{post: d.postSignInOptions}
		table["passkey/signin"] = endpoint{post: d.postSignIn}
		table["passkey/enrol-options"] = endpoint{post: d.postEnrolOptions}
		table["passkey/enrol"] = endpoint{post: d.postEnrol}
	}
	for name, e := range table {
		var allow []string
		if e.get != nil {
			allow = append(allow, "GET, HEAD")
		}
		if e.post != nil {
			allow = append(allow, "POST")
		}
		e.allow = strings.Join(allow, ", ")
		table[name] = e
	}
	return table
}

// serveEndpoint answers the gateway's own endpoint name under t.Base().
func (g *Gateway) serveEndpoint(w http.ResponseWriter, r *http.Request, t tenant, name string) {
	e, ok := g.endpoints[name]
	if !ok {
		g.pages.errorPage(w, r, t, http.StatusNotFound, templates.NotFoundTitle, templates.NoSuchStepText, nil)
		return
	}
	switch {
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && e.get != nil:
		e.get(w, r, t)
	case r.Method == http.MethodPost && e.post != nil:
		e.post(w, r, t)
	default:
		g.pages.notAllowed(w, r, t, e.allow)
	}
}
