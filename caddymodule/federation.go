package emailotp

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/federation"
	"github.com/otpgate/caddy-email-otp/templates"
)

// Federation: a guest whose address a configured identity provider serves
// signs in there (OpenID Connect) instead of waiting for a code; every
// other address gets the code. The sign-in page stays one field.

// FederationConfig is the providers of a gateway.
type FederationConfig struct {
	Providers []ProviderConfig `json:"providers,omitempty"`
	// Fallback is what a guest of a provider's domain may do when the
	// provider is down or refuses: "code" (a button to get a code instead)
	// or "off" (wait for the provider). Off keeps a stranger from pushing a
	// federated domain's guests onto the code. Default: code.
	Fallback string `json:"fallback,omitempty"`
}

// ProviderConfig is one OpenID Connect provider.
type ProviderConfig struct {
	// Name, as the method header says it: oidc:<name>.
	Name string `json:"name"`
	// The issuer URL; its /.well-known/openid-configuration is read.
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// The client secret; {env.*} and {file.*} are replaced at load.
	ClientSecret string `json:"client_secret,omitempty"`
	// Scopes beyond openid. Default: email.
	Scopes []string `json:"scopes,omitempty"`
	// The addresses the provider serves, in the allow list's forms
	// (*@contoso.com). Required: a provider never signs in an address
	// outside them.
	Domains []string `json:"domains"`
	// Claims the ID token must carry with these values (Entra's tid,
	// Google's hd). Default: none.
	Claims map[string]string `json:"claims,omitempty"`
	// UseTokenExpiry ends the session when the provider's ID token
	// expires, if that comes before session_ttl. Default: false (the
	// usual session_ttl).
	UseTokenExpiry bool `json:"use_token_expiry,omitempty"`
}

func (g *Gateway) unmarshalFederation(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if g.Federation == nil {
		g.Federation = &FederationConfig{}
	}
	for d.NextBlock(1) {
		switch d.Val() {
		case "fallback":
			val, err := oneArg(d, "federation fallback")
			if err != nil {
				return err
			}
			g.Federation.Fallback = val
		case "provider":
			name, err := oneArg(d, "federation provider")
			if err != nil {
				return err
			}
			p := ProviderConfig{Name: name}
			for d.NextBlock(2) {
				opt := d.Val()
				args := d.RemainingArgs()
				one := func(field *string) error {
					if len(args) != 1 {
						return d.Errf("federation provider %s: %s takes exactly one value", name, opt)
					}
					*field = args[0]
					return nil
				}
				switch opt {
				case "issuer":
					err = one(&p.Issuer)
				case "client_id":
					err = one(&p.ClientID)
				case "client_secret":
					err = one(&p.ClientSecret)
				case "scopes":
					p.Scopes = append(p.Scopes, args...)
				case "domains":
					p.Domains = append(p.Domains, args...)
				case "use_token_expiry":
					if len(args) != 0 {
						return d.Errf("federation provider %s: use_token_expiry takes no value", name)
					}
					p.UseTokenExpiry = true
				case "claim":
					if len(args) != 2 {
						return d.Errf("federation provider %s: claim takes a name and a value, e.g. claim tid 72f988bf-…", name)
					}
					if p.Claims == nil {
						p.Claims = map[string]string{}
					}
					p.Claims[args[0]] = args[1]
				default:
					return d.Errf("federation provider %s: unknown option %q (use issuer, client_id, client_secret, scopes, domains, claim, use_token_expiry)", name, opt)
				}
				if err != nil {
					return err
				}
			}
			g.Federation.Providers = append(g.Federation.Providers, p)
		default:
			return d.Errf("federation: unknown option %q (use provider NAME { … } or fallback code|off)", d.Val())
		}
	}
	return nil
}

// federatedPrefix starts the Method of an identity provider's sessions.
const federatedPrefix = "oidc:"

// federationDesk is the federation part of a gateway: the trip to a
// provider and the way back.
type federationDesk struct {
	providers []*federation.Provider
	fallback  bool
	store     flow.Store
	service   *flow.Service
	pages     *pageRenderer
	pending   pendingCookies
	csrf      csrfKey
	links     linkOrigin
	log       signInLog
	clock     flow.Clock
	start     func(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, s flow.Session) (string, error)
}

// newFederationDesk checks the configuration and makes the providers;
// nothing is fetched from them yet.
func newFederationDesk(c *FederationConfig) (*federationDesk, error) {
	d := &federationDesk{fallback: true}
	switch c.Fallback {
	case "", "code":
	case "off":
		d.fallback = false
	default:
		return nil, fmt.Errorf("federation fallback %q: use code or off", c.Fallback)
	}
	if len(c.Providers) == 0 {
		return nil, errors.New("federation: name at least one provider (provider NAME { issuer …; client_id …; domains … })")
	}
	repl := caddy.NewReplacer()
	seen := map[string]bool{}
	for _, pc := range c.Providers {
		if seen[pc.Name] {
			return nil, fmt.Errorf("federation: provider %s is named twice", pc.Name)
		}
		seen[pc.Name] = true
		secret, err := repl.ReplaceOrErr(pc.ClientSecret, true, true)
		if err != nil {
			return nil, fmt.Errorf("federation provider %s: client_secret: %v", pc.Name, err)
		}
		scopes := pc.Scopes
		if len(scopes) == 0 {
			scopes = []string{"email"}
		}
		p, err := federation.New(federation.Config{
			Name: pc.Name, Issuer: pc.Issuer, ClientID: pc.ClientID, ClientSecret: secret,
			Scopes: scopes, Domains: pc.Domains, Claims: pc.Claims, UseTokenExpiry: pc.UseTokenExpiry,
		})
		if err != nil {
			return nil, fmt.Errorf("federation %w", err)
		}
		d.providers = append(d.providers, p)
	}
	return d, nil
}

// discoverAll fetches every provider's configuration once, at load, so an
// unreachable one is said at once; it does not fail the load (a provider's
// outage must not take the site down), and each is tried again when a
// guest needs it.
func (d *federationDesk) discoverAll(ctx caddy.Context) {
	for _, p := range d.providers {
		if _, err := p.Discover(ctx); err != nil {
			d.log.Warn("federation: identity provider not reachable at load; its guests see a page saying so until it answers", zap.Error(err))
		}
	}
}

// providerFor is the provider that serves addr, or nil.
func (d *federationDesk) providerFor(addr string) *federation.Provider {
	for _, p := range d.providers {
		if p.Serves(addr) {
			return p
		}
	}
	return nil
}

func (d *federationDesk) named(name string) *federation.Provider {
	for _, p := range d.providers {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

func (d *federationDesk) redirectURI(r *http.Request, t tenant) string {
	return d.links.of(r) + t.Base() + "oidc/callback"
}

// send takes a sign-in whose address a provider serves: it sends the guest
// there and reports true, having answered. A guest who asked for the code
// instead (where the fallback allows it), or an address no provider
// serves, is left to the code: false.
func (d *federationDesk) send(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, addr, rd string) bool {
	prov := d.providerFor(addr)
	if prov == nil {
		return false
	}
	if d.fallback && r.PostForm.Get("via") == "code" {
		d.log.step(r, t, "oidc_fallback", prov.Name(), addr)
		return false
	}
	trip, target, err := prov.Start(r.Context(), t.Key, addr, rd, d.redirectURI(r, t))
	if err == nil {
		var state []byte
		if state, err = json.Marshal(trip); err == nil {
			err = d.store.SaveCeremony(r.Context(), federation.TripKey(trip.State), state, d.clock.Now().Add(federation.Lifetime))
		}
	}
	if err == nil {
		p.Email, p.RD, p.Trip = addr, rd, trip.State
		err = d.pending.save(w, r, t, p)
	}
	if errors.Is(err, federation.ErrUnavailable) {
		d.log.step(r, t, "oidc_unavailable", prov.Name(), addr)
		d.log.Warn("identity provider unreachable", d.log.fields(r, t, addr, zap.Error(err))...)
		d.trouble(w, r, t, p, addr, http.StatusServiceUnavailable, templates.OIDCUnavailableTitle, templates.OIDCUnavailableText)
		return true
	}
	if errors.Is(err, flow.ErrBusy) {
		// The store is full of trips and ceremonies (a flood): try again
		// shortly, as for a code.
		d.pages.busy(w, r, t, err, link{t.Base() + "signin?rd=" + url.QueryEscape(rd), templates.ActionTryAgain})
		return true
	}
	if err != nil {
		d.pages.internalError(w, r, t, err)
		return true
	}
	d.log.step(r, t, "oidc_redirected", prov.Name(), addr)
	http.Redirect(w, r, target, http.StatusSeeOther)
	return true
}

// trouble is a page about the provider, with the way to a code where the
// fallback allows it.
func (d *federationDesk) trouble(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, addr string, status int, title, text templates.Message) {
	words := d.pages.words(r)
	data := templates.PageData{
		Email: addr, RD: safeRD(p.RD, t), CSRF: d.csrf.token(t, p.Nonce), Fallback: d.fallback,
		Heading: words.Say(title, nil), Message: words.Say(text, nil),
	}
	d.pages.page(w, r, t, status, templates.PageFederation, data)
}

// oidcRefusals are the answers a provider's sign-in can get after it came
// back: the funnel's reason and the guest's words.
var oidcRefusals = refusals{
	{federation.ErrNotVerified, "not_verified", templates.OIDCNotVerifiedText},
	{federation.ErrOutsideDomains, "outside_domains", templates.OIDCOutsideText},
	{federation.ErrClaimMismatch, "claim", templates.OIDCRefusedText},
	{federation.ErrRefused, "refused", templates.OIDCRefusedText},
	{federation.ErrProviderRefused, "provider_error", templates.OIDCRefusedText},
	{flow.ErrNotPermitted, "denied", templates.OIDCDeniedText},
	{directory.ErrRevoked, "denied", templates.OIDCDeniedText},
}

// getCallback is the provider's way back: the trip of this browser, the
// code exchanged and the ID token checked, then the policy, then the
// session, on the link first opened.
func (d *federationDesk) getCallback(w http.ResponseWriter, r *http.Request, t tenant) {
	q := r.URL.Query()
	p, _ := d.pending.load(r, t, "")
	state := q.Get("state")
	var trip federation.Trip
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(p.Trip)) != 1 {
		d.refuse(w, r, t, p, "", errors.New("the state is not this browser's sign-in"), "wrong_state", templates.OIDCStaleText)
		return
	}
	raw, err := d.store.TakeCeremony(r.Context(), federation.TripKey(state), d.clock.Now())
	if err == nil {
		err = json.Unmarshal(raw, &trip)
	}
	prov := d.named(trip.Provider)
	if err != nil || trip.Tenant != t.Key || prov == nil {
		d.refuse(w, r, t, p, "", fmt.Errorf("no trip for this state: %v", err), "wrong_state", templates.OIDCStaleText)
		return
	}
	p.Trip = ""
	if e := q.Get("error"); e != "" {
		d.refuse(w, r, t, p, trip.Email, fmt.Errorf("%w: %s", federation.ErrProviderRefused, templates.OneLine(truncate(e, 64))), "provider_error", templates.OIDCRefusedText)
		return
	}
	id, err := prov.Finish(r.Context(), trip, q.Get("code"), d.redirectURI(r, t))
	var s flow.Session
	var needsConsent bool
	if err == nil {
		s, needsConsent, err = d.service.FederatedSignIn(r.Context(), t.Key, id.Email, federatedPrefix+prov.Name(), prov.SessionNotAfter(id))
	}
	if errors.Is(err, federation.ErrUnavailable) {
		d.trouble(w, r, t, p, trip.Email, http.StatusServiceUnavailable, templates.OIDCUnavailableTitle, templates.OIDCUnavailableText)
		return
	}
	if err != nil {
		if why, ok := oidcRefusals.of(err); ok {
			d.refuse(w, r, t, p, trip.Email, err, why.reason, why.words)
			return
		}
		d.pages.internalError(w, r, t, err)
		return
	}
	p.RD = trip.RD
	d.log.step(r, t, "oidc_returned", prov.Name(), id.Email)
	if needsConsent {
		p.AwaitConsent(s)
		if err := d.pending.save(w, r, t, p); err != nil {
			d.pages.internalError(w, r, t, err)
			return
		}
		http.Redirect(w, r, t.Base()+"consent", http.StatusSeeOther)
		return
	}
	rd, err := d.start(w, r, t, p, s)
	if err != nil {
		d.pages.internalError(w, r, t, err)
		return
	}
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// refuse answers a provider's sign-in that does not stand.
func (d *federationDesk) refuse(w http.ResponseWriter, r *http.Request, t tenant, p flow.Pending, email string, err error, reason string, text templates.Message) {
	d.log.step(r, t, "oidc_refused", reason, email)
	d.log.Info("identity provider's sign-in refused", d.log.fields(r, t, email, zap.String("reason", reason), zap.Error(err))...)
	_ = d.pending.save(w, r, t, p)
	d.trouble(w, r, t, p, email, http.StatusForbidden, templates.OIDCRefusedTitle, text)
}
