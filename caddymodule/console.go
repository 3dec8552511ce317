package emailotp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

// ConsoleConfig is the admins' console: server-rendered pages under Path
// of the gateway's sites where the people who share documents see their
// guests and act on them. Admins sign in through the gateway itself (a
// code, a passkey or their provider), as a tenant of its own, so a guest's
// session never opens the console and an admin's never opens a document.
type ConsoleConfig struct {
	// Path, like /admin: the console answers it and everything below.
	Path string `json:"path"`
	// Admins of every tenant of the gateway, as allow patterns
	// (*@contoso.com, alice@fabrikam.com).
	Admins []string `json:"admins,omitempty"`
	// TenantAdmins, by tenant id, see and change that tenant alone.
	TenantAdmins map[string][]string `json:"tenant_admins,omitempty"`
}

// addAdmins reads one admins line: patterns for every tenant, or a tenant
// id (it has no '@') and patterns for it.
func (c *ConsoleConfig) addAdmins(args []string) error {
	if len(args) > 0 && !strings.Contains(args[0], "@") {
		if len(args) == 1 {
			return fmt.Errorf("admins %s: give the tenant's admins after its id (alice@contoso.com, *@contoso.com)", args[0])
		}
		if c.TenantAdmins == nil {
			c.TenantAdmins = map[string][]string{}
		}
		c.TenantAdmins[args[0]] = append(c.TenantAdmins[args[0]], args[1:]...)
		return nil
	}
	if len(args) == 0 {
		return errors.New("admins takes addresses or patterns (alice@contoso.com, *@contoso.com), after a tenant id for that tenant's admins")
	}
	c.Admins = append(c.Admins, args...)
	return nil
}

// consoleAdmins says who administers which tenant.
type consoleAdmins struct {
	all      *flow.Policy // nil: no gateway-wide admins
	byTenant map[string]flow.Policy
	signIn   flow.Policy // who may sign in to the console at all
}

func newConsoleAdmins(c *ConsoleConfig, block []string) (consoleAdmins, error) {
	var a consoleAdmins
	every := slices.Clone(c.Admins)
	if len(c.Admins) > 0 {
		p, err := flow.NewPolicy(c.Admins, nil, false)
		if err != nil {
			return a, fmt.Errorf("admins: %w", err)
		}
		a.all = &p
	}
	a.byTenant = map[string]flow.Policy{}
	for id, patterns := range c.TenantAdmins {
		p, err := flow.NewPolicy(patterns, nil, false)
		if err != nil {
			return a, fmt.Errorf("admins %s: %w", id, err)
		}
		a.byTenant[id] = p
		every = append(every, patterns...)
	}
	if len(every) == 0 {
		return a, errors.New("console: list its admins (admins alice@contoso.com, or admins <tenant> alice@contoso.com for one tenant)")
	}
	var err error
	if a.signIn, err = flow.NewPolicy(every, block, false); err != nil {
		return a, fmt.Errorf("admins: %w", err)
	}
	return a, nil
}

// policies are the flow's tenant policies: the console's tenant admits
// its admins alone. A nil receiver (no console) has none.
func (a *consoleAdmins) policies(ns string) map[string]flow.Policy {
	if a == nil {
		return nil
	}
	return map[string]flow.Policy{consoleKey(ns): a.signIn}
}

// ofAll reports whether email administers every tenant.
func (a consoleAdmins) ofAll(email string) bool { return a.all != nil && a.all.Allowed(email) }

// of reports whether email administers tenant id.
func (a consoleAdmins) of(email, id string) bool {
	if a.ofAll(email) {
		return true
	}
	p, ok := a.byTenant[id]
	return ok && p.Allowed(email)
}

// tenantsOf lists the tenants email administers by name.
func (a consoleAdmins) tenantsOf(email string, named []string) []string {
	var ids []string
	for _, id := range named {
		if a.of(email, id) {
			ids = append(ids, id)
		}
	}
	for id := range a.byTenant {
		if a.of(email, id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// consoleTenantID is the console's own tenant, which admins sign in to.
const consoleTenantID = "console"

// consoleDesk serves the console: its pages, its confirmations and the
// changes admins make.
type consoleDesk struct {
	root     string // "/admin/"
	tenant   tenant // the console's own, for sign-in and its cookies
	admins   consoleAdmins
	tenants  tenantSet
	tenantOf func(id string) (tenant, bool) // a served tenant by id
	guests   *guestBook
	service  *flow.Service
	pages    *pageRenderer
	csrf     csrfKey
	log      signInLog
	clock    flow.Clock
	session  func(*http.Request, tenant) (flow.Session, directory.Guest, bool, error)
	signIn   func(http.ResponseWriter, *http.Request, tenant)
	endpoint func(http.ResponseWriter, *http.Request, tenant, string)
	invites  *consoleInvites
	health   func(context.Context) health // the gateway's store, mailer and queue
}

// consoleKey is the console tenant's key in namespace ns: no host, path or
// static tenant has it.
func consoleKey(ns string) string {
	return directory.TenantKey(ns, directory.ConsoleMode, consoleTenantID)
}

// owns reports whether the request path is the console's.
func (c *consoleDesk) owns(p string) bool {
	return p+"/" == c.root || strings.HasPrefix(p, c.root)
}

// serve answers every request under the console's path.
func (c *consoleDesk) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path+"/" == c.root {
		http.Redirect(w, r, c.root, http.StatusPermanentRedirect)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, c.tenant.Base()); ok {
		c.endpoint(w, r, c.tenant, rest)
		return
	}
	sess, _, ok, err := c.session(r, c.tenant)
	if err != nil {
		c.pages.internalError(w, r, c.tenant, err)
		return
	}
	if !ok {
		c.signIn(w, r, c.tenant)
		return
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		// The console's pages are documents an admin opens, and its forms
		// are posted by navigating; a script's fetch (a tenant's page on
		// the same origin reading a CSRF token) gets nothing.
		c.forbidden(w, r, sess)
		return
	}
	admin := sess.Email
	if !c.admins.signIn.Allowed(admin) {
		// Taken off the admins since signing in.
		c.forbidden(w, r, sess)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, c.root), "/")
	switch {
	case len(parts) == 1 && parts[0] == "":
		c.home(w, r, sess)
		return
	case len(parts) == 1 && parts[0] == "t":
		// The home page's "open a tenant" form.
		c.redirect(w, r, c.root+"t/"+url.PathEscape(r.URL.Query().Get("tenant"))+"/")
		return
	case len(parts) < 3 || parts[0] != "t":
		c.notFound(w, r)
		return
	}
	t, ok := c.tenantOf(parts[1])
	if !ok || !c.admins.of(admin, t.ID) {
		// The same answer for a tenant that does not exist and one the
		// admin may not see: nothing tells them apart.
		c.log.Info("console refused: not an admin of the tenant asked for", c.log.fields(r, c.tenant, admin, zap.String("path", r.URL.Path))...)
		c.pages.errorPage(w, r, c.tenant, http.StatusForbidden, templates.ForbiddenHeading, templates.ConsoleNotYours,
			templates.Vars{"Email": admin}, link{c.root, templates.ConsoleBackHome})
		return
	}
	switch {
	case len(parts) == 3 && parts[2] == "":
		c.list(w, r, sess, t)
	case len(parts) == 3 && parts[2] == "invite":
		c.invites.serve(w, r, sess, t)
	case len(parts) == 3 && parts[2] == "overview":
		c.overview(w, r, sess, t)
	case len(parts) == 4 && parts[2] == "g":
		c.guest(w, r, sess, t, parts[3], "", "")
	case len(parts) == 5 && parts[2] == "g":
		c.guest(w, r, sess, t, parts[3], parts[4], "")
	case len(parts) == 6 && parts[2] == "g" && parts[4] == "passkeys":
		c.guest(w, r, sess, t, parts[3], deletePasskey, parts[5])
	default:
		c.notFound(w, r)
	}
}

func (c *consoleDesk) redirect(w http.ResponseWriter, r *http.Request, to string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (c *consoleDesk) notFound(w http.ResponseWriter, r *http.Request) {
	c.pages.errorPage(w, r, c.tenant, http.StatusNotFound, templates.NotFoundTitle, templates.ConsoleNoSuchPage, nil,
		link{c.root, templates.ConsoleBackHome})
}

func (c *consoleDesk) forbidden(w http.ResponseWriter, r *http.Request, sess flow.Session) {
	c.log.Info("console refused: not an admin", c.log.fields(r, c.tenant, sess.Email, zap.String("path", r.URL.Path))...)
	c.pages.page(w, r, c.tenant, http.StatusForbidden, templates.PageForbidden, templates.PageData{Email: sess.Email, RD: c.root})
}

// view starts the page data of a console page.
func (c *consoleDesk) view(sess flow.Session, name string) templates.PageData {
	return templates.PageData{Console: &templates.ConsoleView{
		View: name, Admin: sess.Email, Home: c.root, SignOut: c.tenant.Base() + "signout",
	}}
}

func (c *consoleDesk) home(w http.ResponseWriter, r *http.Request, sess flow.Session) {
	data := c.view(sess, "home")
	named := make([]string, 0, len(c.tenants.named))
	for id := range c.tenants.named {
		named = append(named, id)
	}
	for _, id := range c.admins.tenantsOf(sess.Email, named) {
		data.Console.Tenants = append(data.Console.Tenants, c.tenantLink(id))
	}
	data.Console.AnyTenant = c.admins.ofAll(sess.Email)
	c.pages.page(w, r, c.tenant, http.StatusOK, templates.PageConsole, data)
}

func (c *consoleDesk) tenantLink(id string) templates.ConsoleTenant {
	return templates.ConsoleTenant{ID: id, Name: c.pages.displayNames.of(id), Link: c.tenantPath(id)}
}

// tenantPath is the console's page of tenant id's guests.
func (c *consoleDesk) tenantPath(id string) string { return c.root + "t/" + url.PathEscape(id) + "/" }

// guestPath is the console's page of one of tenant id's guests.
func (c *consoleDesk) guestPath(id, email string) string {
	return c.tenantPath(id) + "g/" + url.PathEscape(email)
}

// list is a page of the tenant's guests: the search and filters of the
// admin API, from a form that works without script.
func (c *consoleDesk) list(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant) {
	data := c.view(sess, "guests")
	v := data.Console
	v.Tenant = c.tenantLink(t.ID)
	form := r.URL.Query()
	words := c.pages.words(r)
	v.Query = templates.ConsoleQuery{Search: form.Get("q"), After: form.Get("signed_in_after"), Before: form.Get("signed_in_before"),
		Selects: filterSelects(words, form)}
	v.Done, v.DoneCount = doneNotice(form)
	v.DoneEmail = form.Get("q")
	form.Del("done")
	form.Del("n")
	q, err := guestQuery(form)
	if err != nil {
		data.FieldError = words.Say(templates.ConsoleBadFilter, nil)
		c.pages.page(w, r, c.tenant, http.StatusBadRequest, templates.PageConsole, data)
		return
	}
	q.Limit = directory.DefaultPage
	page, err := c.guests.Find(r.Context(), t.Key, q)
	if err != nil {
		c.pages.internalError(w, r, c.tenant, err)
		return
	}
	for _, g := range page.Guests {
		v.Guests = append(v.Guests, c.guestRow(words, t, g))
	}
	if page.Next != "" {
		next := url.Values{}
		for k, vals := range form {
			next[k] = vals
		}
		next.Set("after", page.Next)
		v.Next = "?" + next.Encode()
	}
	if q.After != "" {
		form.Del("after")
		v.First = "?" + form.Encode()
	}
	c.pages.page(w, r, c.tenant, http.StatusOK, templates.PageConsole, data)
}

// guestFilters are the guest list's status, source and order selects;
// each value's words are the message its prefix and the value make.
var guestFilters = []struct {
	name         string
	label, first templates.Message // first: the words of the empty value
	prefix       string
	values       []string
}{
	{"status", templates.ConsoleStatus, templates.ConsoleAny, "console_status_",
		[]string{string(directory.Invited), string(directory.Redeemed), string(directory.Revoked)}},
	{"source", templates.ConsoleSource, templates.ConsoleAny, "console_source_",
		[]string{directory.SourceOTP, directory.SourcePasskey, sourceProvider}},
	{"sort", templates.ConsoleSort, templates.ConsoleSortAddress, "console_sort_", []string{directory.SortLastSignIn}},
}

// filterSelects are the guestFilters in the admin's words, with the form's
// choices selected.
func filterSelects(words templates.Words, form url.Values) []templates.ConsoleSelect {
	out := make([]templates.ConsoleSelect, 0, len(guestFilters))
	for _, s := range guestFilters {
		chosen := form.Get(s.name)
		sel := templates.ConsoleSelect{Name: s.name, Label: words.Say(s.label, nil),
			Options: []templates.ConsoleOption{{Text: words.Say(s.first, nil), Selected: chosen == ""}}}
		for _, v := range s.values {
			sel.Options = append(sel.Options, templates.ConsoleOption{Value: v, Text: words.Say(templates.Message(s.prefix+v), nil), Selected: v == chosen})
		}
		out = append(out, sel)
	}
	return out
}

func (c *consoleDesk) guestRow(words templates.Words, t tenant, g directory.Guest) templates.ConsoleGuest {
	row := templates.ConsoleGuest{
		Email: g.Email, Source: sourceKind(g.Source), Provider: strings.TrimPrefix(g.Source, "oidc:"),
		InvitedBy: g.InvitedBy, LastSignIn: consoleTime(g.LastSignIn),
		Link:       c.guestPath(t.ID, g.Email),
		StatusText: words.Say(templates.Message("console_status_"+string(g.Status)), nil),
	}
	switch row.Source {
	case sourceProvider:
		row.SourceText = words.Say(templates.ConsoleSourceProvider, templates.Vars{"Provider": row.Provider})
	case directory.SourceOTP, directory.SourcePasskey:
		row.SourceText = words.Say(templates.Message("console_source_"+row.Source), nil)
	}
	return row
}

// sourceProvider is the kind of every "oidc:<provider>" source, as the
// list's filter and the pages name it.
const sourceProvider = "oidc"

// sourceKind is the kind of a guest's source the pages have words for.
func sourceKind(source string) string {
	if strings.HasPrefix(source, "oidc:") {
		return sourceProvider
	}
	return source
}

// consoleTime shows a moment to admins: in UTC, to the minute.
func consoleTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
