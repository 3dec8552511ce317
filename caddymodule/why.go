package emailotp

import (
	"net/http"
	"slices"
	"strings"

	"github.com/otpgate/caddy-email-otp/flow"
)

// whyAnswer is the answer to "why can't this guest get in?": for every
// loaded gateway serving the tenant, the rule that decides and the limits
// holding the address; with a path, whether the guest's invitation opens
// it; and the mailer's last answers about the guest's codes.
type whyAnswer struct {
	Tenant   string       `json:"tenant"`
	Gateways []whyGateway `json:"gateways"`
	Path     *whyPath     `json:"path,omitempty"`
	// RecentCodes are the mailer's last answers (newest first) about this
	// address's code emails, as this node saw them.
	RecentCodes []mailerAnswer `json:"recent_codes,omitempty"`
	// Passkeys are the guest's passkeys here; a gateway with passkeys off
	// (PasskeysOn false) refuses them.
	Passkeys []passkeyView `json:"passkeys,omitempty"`
}

type whyGateway struct {
	Tenants    string `json:"tenants"` // how the gateway finds tenants
	PasskeysOn bool   `json:"passkeys_on"`
	// SignsInWith is how the address would sign in here: "code", or
	// "oidc:<provider>" where a provider's domains cover it (the code
	// then only by the fallback).
	SignsInWith string `json:"signs_in_with"`
	flow.Explanation
}

type whyPath struct {
	Path  string `json:"path"`
	Opens bool   `json:"opens"` // the guest's invited paths let them open it
	Why   string `json:"why"`
}

// why answers GET /email-otp/why/{tenant}/{email}[?path=/x].
func (a *AdminAPI) why(w http.ResponseWriter, r *http.Request) error {
	tenant, email, err := guestOf(r)
	if err != nil {
		return err
	}
	out := whyAnswer{Tenant: tenant, RecentCodes: recentMail.of(tenant, email)}
	for _, g := range servingGateways(tenant) {
		ex, err := g.service.Explain(r.Context(), tenant, email)
		if err != nil {
			return apiError(http.StatusInternalServerError, "explaining: %v", err)
		}
		if ex.Guest != nil {
			// The passkeys as the admin API shows them, not their keys.
			out.Passkeys = viewOf(*ex.Guest).Passkeys
			ex.Guest.Passkeys, ex.Guest.PasskeyHandle = nil, nil
		}
		out.Gateways = append(out.Gateways, whyGateway{Tenants: g.tenantsLabel(), PasskeysOn: g.passkeys != nil, SignsInWith: g.signsInWith(email), Explanation: ex})
	}
	slices.SortFunc(out.Gateways, func(a, b whyGateway) int { return strings.Compare(a.Tenants, b.Tenants) })
	if p := r.URL.Query().Get("path"); p != "" && len(out.Gateways) > 0 {
		out.Path = &whyPath{Path: p, Opens: true, Why: "no invitation limits the paths"}
		if g := out.Gateways[0].Guest; g != nil && len(g.Paths) > 0 {
			out.Path.Opens = g.Opens(p)
			out.Path.Why = "the invitation opens " + strings.Join(g.Paths, ", ")
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// servingGateways are the loaded gateways that could serve tenant key.
func servingGateways(key string) []*Gateway {
	var out []*Gateway
	for _, g := range gateways.loaded() {
		if t, ok := g.Tenant.produces(key); ok && t == key {
			out = append(out, g)
		}
	}
	return out
}

// tenantsLabel says how a gateway finds tenants: host, path /t/, static docs.
func (g *Gateway) tenantsLabel() string {
	return strings.TrimSpace(g.Tenant.From + " " + g.Tenant.Prefix + g.Tenant.Name)
}

// signsInWith is how email would sign in at this gateway (whyGateway's
// SignsInWith).
func (g *Gateway) signsInWith(email string) string {
	if g.federation != nil {
		if p := g.federation.providerFor(email); p != nil {
			return federatedPrefix + p.Name()
		}
	}
	return "code"
}
