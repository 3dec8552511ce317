// Package emailotp is the Caddy adapter of caddy-email-otp: the
// http.handlers.email_otp handler, its Caddyfile directive, and the mailer and
// store modules. It translates requests into flow calls and flow results into
// pages, redirects and headers; the sign-in logic itself lives in flow. It is
// named for what it does, like Caddy's own caddyauth or forwardauth; its
// folder keeps the project's name for it, caddymodule.
package emailotp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/hygiene"
	"github.com/otpgate/caddy-email-otp/templates"
)

func init() {
	caddy.RegisterModule(Gateway{})
}

// Defaults of the product's promises (Azure AD B2B email OTP, NIST 800-63B).
const (
	DefaultCodeTTL     = 30 * time.Minute
	DefaultSessionTTL  = 24 * time.Hour
	DefaultCodeLength  = 8
	DefaultMaxAttempts = 5
	defaultPathPrefix  = "/t/"
)

// Gateway puts email one-time-passcode sign-in in front of the handlers after
// it. A request without a valid session for its tenant is sent to the sign-in
// page (browsers) or answered 401 (other clients); a request with one goes on
// with identity headers set and client-sent copies of them removed.
//
// It sets these placeholders for the handlers after it:
//
//	{http.auth.user.id}      the guest's address (as basic_auth sets it)
//	{http.auth.user.email}   the guest's address
//	{http.auth.user.tenant}  the tenant id
//	{http.auth.user.status}  the guest's directory status (invited, redeemed)
type Gateway struct {
	// Where the tenant of a request comes from. Default: the request host.
	Tenant *TenantConfig `json:"tenant,omitempty"`
	// The tenants this handler serves, by id: names ("acme",
	// "contoso.example.com") and patterns with '*' ("team-*",
	// "*.docs.example.com", "*" for any). A tenant with a display name or
	// branding of its own is served too. A request for any other tenant is
	// answered 404: nothing is stored, nothing is mailed. A tenant only a
	// pattern admits has an id a stranger may have chosen, so its pages and
	// emails use DisplayName (required then) and its emails carry no link.
	// Default: with tenant host, the host names of the site's addresses
	// (a catch-all or wildcard address must list them); with tenant path,
	// none (the config is refused: list them); with tenant static, the one.
	Tenants []string `json:"tenants,omitempty"`
	// Console serves the admins' console (guests, their invitations and
	// sessions) under a path of the gateway's sites. Default: none.
	Console *ConsoleConfig `json:"console,omitempty"`
	// How long a code stays valid. Default: 30m.
	CodeTTL caddy.Duration `json:"code_ttl,omitempty"`
	// How long a session lasts from sign-in, with no sliding. Default: 24h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`
	// Digits in a code, 6 to 12. Default: 8.
	CodeLength int `json:"code_length,omitempty"`
	// Wrong tries before a code is dead, 1 to 100. Default: 5.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Who may sign in: "*", "*@example.com", "*@*.example.com" or an address.
	// Required: an empty list is an error, not "everyone".
	Allow []string `json:"allow,omitempty"`
	// Who may not sign in, in the same forms; block beats allow and
	// invitations. Default: none.
	Block []string `json:"block,omitempty"`
	// Admit invited guests alone: the allow list may then be empty.
	// Invitations admit in every mode. Default: false.
	InviteOnly bool `json:"invite_only,omitempty"`
	// Ask a guest to agree that the tenant sees their address before their
	// first sign-in (redemption). Default: false.
	Consent bool `json:"consent,omitempty"`
	// Log guests' addresses masked (b***@contoso.com) instead of whole.
	// Default: false.
	MaskAddresses bool `json:"mask_addresses,omitempty"`
	// Tell a guest plainly that their address may not sign in, instead of
	// answering as for any address (which keeps the policy from being
	// probed). Default: false.
	RevealDenied bool `json:"reveal_denied,omitempty"`
	// How codes are mailed, a module in http.handlers.email_otp.mailers.
	// Default: dev (logs the message, delivers nothing).
	MailerRaw json.RawMessage `json:"mailer,omitempty" caddy:"namespace=http.handlers.email_otp.mailers inline_key=module"`
	// Where pending codes and revocations live, a module in
	// http.handlers.email_otp.stores. Default: memory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.email_otp.stores inline_key=module"`
	// Secrets (base64, at least 32 random bytes each; {env.*} and {file.*}
	// accepted), newest first: the newest signs, all verify. Default: one
	// secret generated once and kept in Caddy's storage.
	Keys []string `json:"keys,omitempty"`
	// The origin (scheme://host[:port]) of every link in the code and
	// invitation emails, and the host of their one-time-code line. Set it
	// wherever the site answers more than one Host (tenant path or static
	// on a site like ":443"): otherwise a stranger's request with
	// "Host: evil.example" puts evil.example into the guest's real email.
	// Default: the scheme and Host of the request that asked for the code.
	BaseURL string `json:"base_url,omitempty"`
	// A directory whose files override the embedded pages and email
	// (pages/signin.html, email/code.txt, …). Default: none.
	TemplatesDir string `json:"templates_dir,omitempty"`
	// Passkeys for returning guests: after a code sign-in on a device that
	// can make one, the guest is offered (once, skippably) a passkey for
	// this tenant, and the sign-in page signs them in with it, without
	// mail. Set false to offer none and refuse the ones made before.
	// Default: true.
	Passkeys *bool `json:"passkeys,omitempty"`
	// Federation sends a guest whose address a configured OpenID Connect
	// provider serves there to sign in, instead of mailing a code; every
	// other address gets the code (see FederationConfig). Default: none.
	Federation *FederationConfig `json:"federation,omitempty"`
	// How code emails are queued and retried. Default: 4 workers, room for
	// 1000 messages, 6 attempts, retries after 2s doubling up to 1m, 10s to
	// drain on unload (see DeliveryConfig).
	Delivery *DeliveryConfig `json:"delivery,omitempty"`
	// How often codes may be sent and guessed. Default: 10 codes per address,
	// 50 per client IP and 5000 per tenant an hour, 30s between two codes,
	// back-off 1m to 1h, a 24h lock after 100 wrong tries (see LimitsConfig).
	Limits *LimitsConfig `json:"limits,omitempty"`
	// HSTS, when set, is the max-age of the Strict-Transport-Security
	// header on the gateway's own answers over HTTPS (pages, redirects,
	// JSON), so a browser that signed in once never sends its cookies over
	// plain HTTP to this host again. It covers the host alone (no
	// includeSubDomains: that is for the whole domain to decide). To send it
	// on the backend's answers too, use Caddy's header directive instead.
	// Default: off.
	HSTS caddy.Duration `json:"hsts,omitempty"`
	// The name guests see for every tenant of this handler, in the email's
	// subject and on the pages. Default: the tenant id.
	DisplayName string `json:"display_name,omitempty"`
	// Names for single tenants, by tenant id; they beat DisplayName.
	// Default: none.
	DisplayNames map[string]string `json:"display_names,omitempty"`
	// Branding is every tenant's look (logo, accent, support and privacy
	// links); Brandings, by tenant id, override it field by field.
	Branding  *Branding            `json:"branding,omitempty"`
	Brandings map[string]*Branding `json:"brandings,omitempty"`
	// Names of the identity headers set for the backend.
	// Default: X-Auth-Email, X-Auth-Tenant, X-Auth-Method, X-Auth-Session-Expires.
	Headers *HeaderNames `json:"headers,omitempty"`
	// Assertion, when set, sends the backend a signed JWT of the identity
	// too (see AssertionConfig). Default: off.
	Assertion *AssertionConfig `json:"assertion,omitempty"`

	// What Provision builds, each part once, with what it needs.
	service    *flow.Service
	tenants    tenantSet
	modules    loadedModules
	queue      *mailQueue
	journal    *sealedJournal // queued messages kept in the store; nil with the memory store
	guests     *guestBook
	pages      *pageRenderer
	mail       *mailWriter
	links      linkOrigin
	sessions   sessionCookies
	pending    pendingCookies
	devices    deviceMarkers
	csrf       csrfKey
	notMe      notMeLinks
	taps       tapLinks
	passkeys   *passkeyDesk    // nil: passkeys are off
	federation *federationDesk // nil: no providers
	console    *consoleDesk    // nil: no console
	identity   identityHeaders
	fromClient hygiene.Headers  // removed from every request (clientForbidden)
	assertion  *assertionSigner // nil: no assertion
	endpoints  map[string]endpoint
	log        signInLog
	// looseProxies warns once that a proxy's X-Forwarded-Proto goes unheeded.
	looseProxies *sync.Once
}

// CaddyModule returns the Caddy module information.
func (Gateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp",
		New: func() caddy.Module { return new(Gateway) },
	}
}

// Provision implements caddy.Provisioner. It never contacts a mail server,
// so reloads are quick; it reads (and the first time writes) the keys and
// the guest directory in Caddy's storage, and the Redis store answers one
// PING, so a config that can't reach Redis is refused at load.
func (g *Gateway) Provision(ctx caddy.Context) error {
	g.log = newSignInLog(ctx.Logger(), g.MaskAddresses)
	g.looseProxies = new(sync.Once)
	g.applyDefaults()
	opts, err := g.checkOptions()
	if err != nil {
		return err
	}
	g.links = linkOrigin{base: opts.baseURL}
	if err := registerMetrics(ctx); err != nil {
		return err
	}
	if g.modules, err = g.loadModules(ctx); err != nil {
		return err
	}
	keys, err := loadKeys(ctx, g.Keys)
	if err != nil {
		return err
	}
	clock := flow.SystemClock{}
	g.journal = newSealedJournal(g.modules, keys)
	loan := &queueLoan{mailer: g.modules.mailer, store: g.modules.store, journal: g.journal, logger: g.log.Logger, mask: g.MaskAddresses}
	if g.queue, err = loadQueue(queueKeyOf(g.modules, g.Delivery), g.modules.mailerName, g.Delivery, loan); err != nil {
		return fmt.Errorf("delivery queue: %w", err)
	}
	if g.guests, err = openGuestBook(ctx, g.modules.storeModule); err != nil {
		return fmt.Errorf("guest directory: %w", err)
	}
	names := tenantNames{all: g.DisplayName, byTenant: g.DisplayNames}
	if g.pages, err = newPageRenderer(g.TemplatesDir, names, tenantBrandings{all: g.Branding, byTenant: g.Brandings}, g.log.Logger); err != nil {
		return err
	}
	g.notMe = notMeLinks{signer: keys.Signer("notme"), now: clock.Now}
	g.taps = tapLinks{sealer: keys.Sealer("tap")}
	g.mail = &mailWriter{pages: g.pages, notMe: g.notMe, taps: g.taps, queue: g.queue}
	var console *consoleAdmins
	if g.Console != nil {
		admins, err := newConsoleAdmins(g.Console, g.Block)
		if err != nil {
			return err
		}
		console = &admins
	}
	g.service, err = flow.New(flow.Config{
		CodeTTL:     time.Duration(g.CodeTTL),
		SessionTTL:  time.Duration(g.SessionTTL),
		CodeLength:  g.CodeLength,
		MaxAttempts: g.MaxAttempts,
		Policy:      opts.policy,
		Keys:        keys,
		Store:       g.modules.store,
		Dispatcher:  g.queue,
		Compose:     g.mail.codeMail,
		Guests:      g.guests.Directory,
		Consent:     g.Consent,
		Limits:      g.Limits.flowLimits(),
		Clock:       clock,

		RevealDenied:   g.RevealDenied,
		TenantPolicies: console.policies(g.Tenant.Namespace),
	})
	if err != nil {
		return err
	}
	g.csrf = csrfKey(keys.MAC("csrf"))
	g.sessions = sessionCookies{sealer: keys.SessionSealer(10_000), service: g.service}
	g.pending = pendingCookies{sealer: keys.Sealer("pending"), csrf: g.csrf, now: clock.Now}
	g.devices = deviceMarkers{sealer: keys.Sealer("device"), now: clock.Now}
	if g.assertion, err = newAssertionSigner(ctx, g.Assertion, clock, g.log.Logger); err != nil {
		return err
	}
	assertionHeader := g.Assertion.headerName()
	g.identity = newIdentityHeaders(g.Headers, assertionHeader)
	g.fromClient = clientForbidden(g.Headers, assertionHeader)
	st := siteOf(ctx)
	g.tenants = newTenantSet(g, st.hosts)
	if err := g.tenants.check(g); err != nil {
		return err
	}
	g.warnWeakSetup(st)
	if g.Passkeys == nil || *g.Passkeys {
		g.passkeys = &passkeyDesk{
			store: g.modules.store, guests: g.guests, service: g.service, pages: g.pages, pending: g.pending,
			devices: g.devices, csrf: g.csrf, log: g.log, clock: clock, session: g.sessionOf, start: g.startSession,
		}
	}
	if g.Federation != nil {
		if g.federation, err = newFederationDesk(g.Federation); err != nil {
			return err
		}
		fd := g.federation
		fd.store, fd.service, fd.pages, fd.pending, fd.csrf = g.modules.store, g.service, g.pages, g.pending, g.csrf
		fd.links, fd.log, fd.clock, fd.start = g.links, g.log, clock, g.startSession
		fd.discoverAll(ctx)
	}
	if console != nil {
		root := strings.TrimSuffix(g.Console.Path, "/") + "/"
		g.console = &consoleDesk{
			root: root, tenant: tenant{Key: consoleKey(g.Tenant.Namespace), ID: consoleTenantID, Root: root, Named: true},
			admins: *console, tenants: g.tenants, tenantOf: g.servedTenant, guests: g.guests, service: g.service,
			pages: g.pages, csrf: g.csrf, log: g.log, clock: clock, session: g.sessionOf, signIn: g.askToSignIn, endpoint: g.serveEndpoint,
			health: g.checkHealth,
		}
		g.console.invites = &consoleInvites{desk: g.console, links: g.links, byHost: g.Tenant.From == TenantFromHost}
	}
	g.endpoints = g.endpointTable()
	gateways.add(g)
	return nil
}

// warnWeakSetup warns of what loads but leaves guests less protected than
// they could be.
func (g *Gateway) warnWeakSetup(st site) {
	if g.tenants.siblingsShareCookies(g.Tenant.From, st) {
		g.log.Warn("email_otp: host tenants on plain HTTP are not kept apart: a page on one host can set a cookie for a parent domain " +
			"that the others accept, and sign their guests in as someone else; serve HTTPS (cookies are then __Host-), " +
			"or behind a proxy that ends TLS, list it in trusted_proxies so its X-Forwarded-Proto https counts")
	}
	if len(g.tenants.patterns) > 0 {
		g.log.Warn("email_otp: tenants "+strings.Join(g.tenants.patterns, " ")+" admit tenants whose id whoever writes the link chooses: "+
			"their pages and emails say display_name and their emails carry no link; list the tenants by name where you can",
			zap.Bool("any_tenant", g.tenants.open()))
	}
	if g.links.base == nil && g.Tenant.From != TenantFromHost {
		g.log.Warn("email_otp: no base_url with tenant "+g.Tenant.From+": links in code emails will use whatever Host a request names; "+
			"if this site answers more than one host name, set base_url (e.g. base_url https://docs.example.com)",
			zap.String("tenant_from", g.Tenant.From))
	}
}

// Cleanup implements caddy.CleanerUpper: the last config using a delivery
// queue drains it.
func (g *Gateway) Cleanup() error {
	gateways.remove(g)
	if g.guests != nil {
		g.guests.close()
	}
	if g.queue == nil {
		return nil
	}
	return g.queue.release()
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Client-sent identity headers go first, whatever happens next.
	g.fromClient.StripClient(r)
	if err := checkPath(r.URL); err != nil {
		g.pages.tenantError(w, r, err)
		return nil
	}

	if g.console != nil && g.console.owns(r.URL.Path) {
		g.console.serve(w, r)
		return nil
	}
	if r.URL.Path == "/"+reservedSegment+"/outbox" {
		g.serveOutbox(w, r, tenant{Root: "/"})
		return nil
	}
	t, err := g.resolveTenant(r)
	if err != nil {
		g.pages.tenantError(w, r, err)
		return nil
	}
	if g.HSTS > 0 && isHTTPS(r) {
		w.Header().Set("Strict-Transport-Security", "max-age="+strconv.FormatInt(int64(time.Duration(g.HSTS)/time.Second), 10))
	}
	if len(r.URL.Path)+1 == len(t.Root) && strings.HasPrefix(t.Root, r.URL.Path) {
		// The tenant root without its slash: cookies (Path=/t/acme/) would
		// not be sent there, and the guest would loop through sign-in.
		target := t.Root
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
		return nil
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, t.Base()); ok {
		g.serveEndpoint(w, r, t, rest)
		return nil
	}
	sess, guest, ok, err := g.sessionOf(r, t)
	if errors.Is(err, errSessionConflict) {
		g.sessionConflict(w, r, t)
		return nil
	}
	if err != nil {
		g.log.Error("session check failed; refusing the request", zap.String("tenant", t.ID), zap.Error(err))
		g.pages.errorPage(w, r, t, http.StatusServiceUnavailable, templates.UnavailableTitle, templates.UnavailableSessionText, nil)
		return nil
	}
	if !ok {
		g.askToSignIn(w, r, t)
		return nil
	}
	// The session is the tenant's; whether it opens this route is this
	// handler's policy and the guest's own paths.
	if !g.service.AdmitsGuest(guest) || !guest.Opens("/"+strings.TrimPrefix(r.URL.Path, t.Root)) {
		checks(t).forbidden.Inc()
		g.forbidden(w, r, t, sess.Email)
		return nil
	}
	checks(t).ok.Inc()
	r = g.passIdentity(r, t, sess, guest)
	if g.HSTS > 0 {
		w.Header().Del("Strict-Transport-Security") // the gateway's answers only; the backend's are its own
	}
	return next.ServeHTTP(gatewayCookies.Guard(w), r)
}

// resolveTenant finds the tenant of r among those this gateway serves.
func (g *Gateway) resolveTenant(r *http.Request) (tenant, error) {
	t, err := g.Tenant.resolve(r)
	if err != nil {
		return t, err
	}
	served, named := g.tenants.admit(t.ID)
	if !served {
		return tenant{}, errUnknownTenant
	}
	t.Named = named
	return t, nil
}

// servedTenant is the tenant of id that this gateway serves, rooted where
// its requests are, or false.
func (g *Gateway) servedTenant(id string) (tenant, bool) {
	key, ok := g.Tenant.produces(directory.TenantKey(g.Tenant.Namespace, g.Tenant.From, id))
	if !ok {
		return tenant{}, false
	}
	id = directory.TenantName(key)
	served, named := g.tenants.admit(id)
	if !served {
		return tenant{}, false
	}
	return tenant{Key: key, ID: id, Root: g.Tenant.rootOf(id), Named: named}, true
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gateway)(nil)
	_ caddy.CleanerUpper          = (*Gateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gateway)(nil)
)
