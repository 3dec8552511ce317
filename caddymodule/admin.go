package emailotp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI manages the guest directory under Caddy's admin endpoint:
//
//	GET    /email-otp/guests/{tenant}?q=&status=&source=&after=&limit=  a page of the list
//	POST   /email-otp/guests/{tenant}                  invite  {"email", "url", "invited_by", "expires_in", "paths", "send_email"}
//	GET    /email-otp/guests/{tenant}/{email}          get
//	POST   /email-otp/guests/{tenant}/{email}/revoke   revoke: no sign-in, sessions end
//	POST   /email-otp/guests/{tenant}/{email}/reset    reset redemption: sessions end, next sign-in redeems
//	DELETE /email-otp/guests/{tenant}/{email}          delete: sessions end
//	GET    /email-otp/guests/{tenant}/{email}/passkeys       the guest's passkeys
//	DELETE /email-otp/guests/{tenant}/{email}/passkeys/{id}  delete one passkey
//
// {tenant} is a tenant key (contoso.example, path:acme, static:docs) and
// {email} an address, each path-escaped. What each operation changes is
// flow/directory's (Invite, Revoke, Reset, Delete); this reads the request
// and writes the answer. Every change is one audit log line.
type AdminAPI struct {
	dir    *directory.Directory
	mux    *http.ServeMux
	logger *zap.Logger
	audit  *zap.Logger // http.handlers.email_otp.audit, as the gateways write it
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.email_otp",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision implements caddy.Provisioner.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	// Used only while no gateway is loaded: nothing caches guests then.
	a.dir = directory.New(ctx.Storage(), 1000, guestCacheTTL)
	a.logger = ctx.Logger()
	// Under the gateway's name, so that a log that includes the gateway's
	// audit lines gets the API's too.
	a.audit = ctx.Logger(Gateway{}).Named("audit")
	a.mux = http.NewServeMux()
	for pattern, h := range map[string]adminHandler{
		"GET /email-otp/health":                                   a.health,
		"GET /email-otp/why/{tenant}/{email}":                     a.why,
		"GET /email-otp/guests/{tenant}":                          a.list,
		"POST /email-otp/guests/{tenant}":                         a.invite,
		"GET /email-otp/guests/{tenant}/{email}":                  a.get,
		"DELETE /email-otp/guests/{tenant}/{email}":               a.changer("guest deleted", "guest_deleted", (*directory.Directory).Delete),
		"POST /email-otp/guests/{tenant}/{email}/revoke":          a.changer("guest revoked", "revoked", (*directory.Directory).Revoke),
		"POST /email-otp/guests/{tenant}/{email}/reset":           a.changer("guest redemption reset", "guest_reset", (*directory.Directory).Reset),
		"GET /email-otp/guests/{tenant}/{email}/passkeys":         a.listPasskeys,
		"DELETE /email-otp/guests/{tenant}/{email}/passkeys/{id}": a.deletePasskey,
		"/email-otp/guests/":                                      a.notAnOperation,
		"/email-otp/":                                             a.noSuchEndpoint,
	} {
		a.mux.Handle(pattern, h)
	}
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/email-otp/", Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		a.mux.ServeHTTP(w, r)
		return nil
	})}}
}

// adminHandler is one operation; its error is the answer (see apiError).
type adminHandler func(w http.ResponseWriter, r *http.Request) error

func (h adminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		var api caddy.APIError
		if !errors.As(err, &api) {
			api = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Message: err.Error()}
		}
		_ = writeJSON(w, api.HTTPStatus, map[string]string{"error": api.Message})
	}
}

const maxAdminBody = 64 << 10

func apiError(status int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return caddy.APIError{HTTPStatus: status, Err: err, Message: err.Error()}
}

// directory is the guest directory of the loaded gateway that serves the
// tenant key (its store's or Caddy's storage), or the one this admin
// endpoint was provisioned with.
func (a *AdminAPI) directory(tenant string) *directory.Directory {
	for _, g := range servingGateways(tenant) {
		return g.guests.Directory
	}
	return a.dir
}

// servedTenant returns the tenant key that a loaded gateway would give the
// tenant named key, or false when none could serve it. So ".." or "a/b" never
// reach the directory's storage, and "CONTOSO.example" is the host tenant
// contoso.example.
func servedTenant(key string) (string, bool) {
	for _, g := range gateways.loaded() {
		if t, ok := g.Tenant.produces(key); ok {
			if served, _ := g.tenants.admit(directory.TenantName(t)); served {
				return t, true
			}
		}
	}
	return "", false
}

// guestOf reads the {tenant} and {email} of a request.
func guestOf(r *http.Request) (tenant, email string, err error) {
	tenant, ok := servedTenant(r.PathValue("tenant"))
	if !ok {
		return "", "", apiError(http.StatusBadRequest, "tenant %q is not a tenant any loaded email_otp handler serves (host names, path:<segment>, static:<name>)", r.PathValue("tenant"))
	}
	if raw := r.PathValue("email"); raw != "" {
		if email, err = flow.ParseAddress(raw); err != nil {
			return "", "", apiError(http.StatusBadRequest, "%v", err)
		}
	}
	return tenant, email, nil
}

func (a *AdminAPI) list(w http.ResponseWriter, r *http.Request) error {
	tenant, _, err := guestOf(r)
	if err != nil {
		return err
	}
	q, err := guestQuery(r.URL.Query())
	if err != nil {
		return apiError(http.StatusBadRequest, "%v", err)
	}
	page, err := a.directory(tenant).Find(r.Context(), tenant, q)
	if err != nil {
		return apiError(http.StatusInternalServerError, "listing guests: %v", err)
	}
	return writeJSON(w, http.StatusOK, guestPage{Guests: viewsOf(page.Guests), Next: page.Next})
}

// guestPage is one page of the guest list; next is the cursor of the
// following page (pass it as after), absent on the last.
type guestPage struct {
	Guests []guestView `json:"guests"`
	Next   string      `json:"next,omitempty"`
}

// guestQuery reads a list's search, filters and cursor: q (part of the
// address, "@domain" for a domain), status, source (otp, passkey, oidc,
// oidc:<name>), signed_in_after and signed_in_before (RFC 3339, or a day), after
// (the cursor), limit.
func guestQuery(v url.Values) (directory.Query, error) {
	q := directory.Query{Search: v.Get("q"), Status: directory.Status(v.Get("status")), Source: v.Get("source"), Sort: v.Get("sort"), After: v.Get("after")}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return q, fmt.Errorf("limit %q: use a number from 1 to %d", l, directory.MaxPage)
		}
		q.Limit = n
	}
	for name, field := range map[string]**time.Time{"signed_in_after": &q.SignedInAfter, "signed_in_before": &q.SignedInBefore} {
		if raw := v.Get(name); raw != "" {
			at, err := time.Parse(time.RFC3339, raw)
			if err != nil {
				// A day, as the console's date fields send it: its start, UTC.
				at, err = time.Parse(time.DateOnly, raw)
			}
			if err != nil {
				return q, fmt.Errorf("%s %q: use an RFC 3339 time such as 2026-12-01T00:00:00Z, or a day such as 2026-12-01", name, raw)
			}
			*field = &at
		}
	}
	return q, directory.CheckQuery(q)
}

func (a *AdminAPI) get(w http.ResponseWriter, r *http.Request) error {
	g, err := a.guestRecord(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, viewOf(g))
}

// guestRecord reads the record of the request's {tenant} and {email}; its
// error is the API's answer.
func (a *AdminAPI) guestRecord(r *http.Request) (directory.Guest, error) {
	tenant, email, err := guestOf(r)
	if err != nil {
		return directory.Guest{}, err
	}
	g, err := a.directory(tenant).Get(r.Context(), tenant, email)
	if errors.Is(err, directory.ErrNotFound) {
		return g, apiError(http.StatusNotFound, "%s is not a guest of %s", email, tenant)
	} else if err != nil {
		return g, apiError(http.StatusInternalServerError, "reading the guest: %v", err)
	}
	return g, nil
}

// changer is the handler of a directory operation on an existing guest,
// logged as event; an operation that is also a sign-in step (a revocation
// ends the guest's way in) names it in step.
func (a *AdminAPI) changer(event, step string, op func(*directory.Directory, context.Context, string, string, time.Time) (directory.Guest, error)) adminHandler {
	return func(w http.ResponseWriter, r *http.Request) error {
		tenant, email, err := guestOf(r)
		if err != nil {
			return err
		}
		g, err := op(a.directory(tenant), r.Context(), tenant, email, time.Now())
		if errors.Is(err, directory.ErrNotFound) {
			return apiError(http.StatusNotFound, "%s is not a guest of %s", email, tenant)
		} else if err != nil {
			return apiError(http.StatusInternalServerError, "changing the guest: %v", err)
		}
		a.changed(r, event, step, tenant, email)
		return writeJSON(w, http.StatusOK, viewOf(g))
	}
}

// changed tells the other nodes that an admin changed a guest through the
// API (see guestChanged).
func (a *AdminAPI) changed(r *http.Request, event, step, tenant, email string) {
	guestChanged(r, a.logger, a.audit, event, step, tenant, email)
}

// guestChanged tells the other nodes that an admin changed a guest, and
// writes the admin log line and, where the change is also a sign-in step,
// the funnel's step; who says who did it (the console's admin), beside the
// request's remote address.
func guestChanged(r *http.Request, logger, audit *zap.Logger, event, step, tenant, email string, who ...zap.Field) {
	announceGuestChange(r.Context(), logger, tenant, email)
	fields := append([]zap.Field{zap.String("tenant", tenant), zap.String("email", email), zap.String("admin_remote", r.RemoteAddr)}, who...)
	logger.Info(event, fields...)
	if step != "" {
		id := directory.TenantName(tenant)
		fields[0] = zap.String("tenant", id)
		recordStep(audit, tenant, email, step, "", fields...)
	}
}

func (a *AdminAPI) notAnOperation(_ http.ResponseWriter, r *http.Request) error {
	return apiError(http.StatusMethodNotAllowed, "%s %s is not an operation of this API", r.Method, r.URL.Path)
}

func (a *AdminAPI) noSuchEndpoint(_ http.ResponseWriter, _ *http.Request) error {
	return apiError(http.StatusNotFound, "no such endpoint: use /email-otp/guests/<tenant>[/<email>[/revoke|/reset|/passkeys[/<id>]]]")
}

// inviteRequest is the body of an invitation.
type inviteRequest struct {
	Email     string   `json:"email"`
	URL       string   `json:"url"`                  // the shared resource; required to send the email
	InvitedBy string   `json:"invited_by,omitempty"` // shown in the email and the directory
	ExpiresIn string   `json:"expires_in,omitempty"` // e.g. "7d"; none: no expiry
	Paths     []string `json:"paths,omitempty"`
	SendEmail *bool    `json:"send_email,omitempty"` // default true
	// AskConsent: the guest agrees on a page before their first sign-in.
	AskConsent bool `json:"ask_consent,omitempty"`
	// Language of the invitation email, e.g. "de"; default: the admin
	// request's Accept-Language, else English.
	Language string `json:"language,omitempty"`
}

// inviteResponse is the guest and the link the email carries.
type inviteResponse struct {
	guestView
	Link string `json:"link,omitempty"`
}

func (a *AdminAPI) invite(w http.ResponseWriter, r *http.Request) error {
	tenant, _, err := guestOf(r)
	if err != nil {
		return err
	}
	var req inviteRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return apiError(http.StatusBadRequest, "the body is not an invitation: %v", err)
	}
	email, err := flow.ParseAddress(req.Email)
	if err != nil {
		return apiError(http.StatusBadRequest, "email: %v", err)
	}
	if err := directory.CheckPaths(req.Paths); err != nil {
		return apiError(http.StatusBadRequest, "paths: %v", err)
	}
	now := time.Now()
	inv := directory.Invitation{InvitedBy: templates.OneLine(req.InvitedBy), Paths: req.Paths, AskConsent: req.AskConsent}
	if req.ExpiresIn != "" {
		d, err := caddy.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			return apiError(http.StatusBadRequest, "expires_in %q: use a positive duration such as 7d or 48h", req.ExpiresIn)
		}
		t := now.Add(d).UTC()
		inv.Expires = &t
	}
	out, err := invite(r.Context(), a.directory(tenant), a.logger, a.audit, invitation{
		Tenant: tenant, Email: email, Invitation: inv, Link: req.URL,
		Send: req.SendEmail == nil || *req.SendEmail, Language: cmp.Or(req.Language, r.Header.Get("Accept-Language")),
	}, r.RemoteAddr)
	switch {
	case errors.Is(err, errInviteLink):
		return apiError(http.StatusBadRequest, "url: %v", err)
	case errors.Is(err, errInviteQueue):
		return apiError(http.StatusServiceUnavailable, "%v", err)
	case err != nil:
		return apiError(http.StatusInternalServerError, "%v", err)
	}
	status := http.StatusOK
	if out.Created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, inviteResponse{guestView: viewOf(out.Guest), Link: out.Link})
}

// invitationLink finds the loaded gateway that serves rawURL as tenant and
// returns it with the sign-in link that lands on rawURL.
func invitationLink(rawURL, tenantID, email string) (*Gateway, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, "", fmt.Errorf("%q: give the http(s) link of the shared resource", rawURL)
	}
	req := &http.Request{Host: u.Host, URL: &url.URL{Path: u.Path, RawPath: u.RawPath}}
	if req.URL.Path == "" {
		req.URL.Path = "/"
	}
	for _, g := range gateways.loaded() {
		t, err := g.resolveTenant(req)
		if err != nil || t.Key != tenantID {
			continue
		}
		rd := safeRD(u.RequestURI(), t)
		return g, g.links.signInLink(u, t, rd, email), nil
	}
	return nil, "", fmt.Errorf("no loaded email_otp handler serves %s as tenant %q", rawURL, tenantID)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Interface guards
var (
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
