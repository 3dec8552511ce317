package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/templates"
)

// serveTenantError answers a request whose tenant or path can't be read.
func (g *Gateway) serveTenantError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errBadPath) {
		g.errorPage(w, r, tenant{Root: "/"}, http.StatusBadRequest, "This link is malformed",
			"The link contains a path that could lead somewhere else than it seems (such as \"..\", \"//\" or \";\"). Open the link exactly as you were sent it, or ask the person who shared it for a new one.")
		return
	}
	if errors.Is(err, errBadTenant) {
		g.errorPage(w, r, tenant{Root: "/"}, http.StatusBadRequest, "This link is malformed",
			"The part of the link that names the shared space is not valid. Ask the person who shared it for a new link.")
		return
	}
	g.errorPage(w, r, tenant{Root: "/"}, http.StatusNotFound, "This link is incomplete",
		"The link does not say which shared space it belongs to, so we can't sign you in. Open the full link you were sent, or ask the person who shared it for a new one.")
}

type link struct{ href, text string }

func (g *Gateway) errorPage(w http.ResponseWriter, r *http.Request, t tenant, status int, heading, message string, action ...link) {
	data := templates.PageData{Heading: heading, Message: message}
	if len(action) > 0 {
		data.Action, data.ActionText = action[0].href, action[0].text
	}
	g.page(w, r, t, status, templates.PageError, data)
}

func (g *Gateway) internalError(w http.ResponseWriter, r *http.Request, t tenant, err error) {
	g.logger.Error("sign-in step failed", zap.String("tenant", t.Name), zap.String("path", r.URL.Path), zap.Error(err))
	g.errorPage(w, r, t, http.StatusServiceUnavailable, "Sign-in is unavailable",
		"Something went wrong on our side. Please try again in a minute.",
		link{t.Base() + "signin", "Start again"})
}

// page renders a gateway page with the headers every auth page carries.
func (g *Gateway) page(w http.ResponseWriter, r *http.Request, t tenant, status int, name string, data templates.PageData) {
	data.Base = t.Base()
	if t.Name != "" {
		data.Tenant = g.displayName(t.Name)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	var buf strings.Builder
	if err := g.pages.Page(&buf, name, data); err != nil {
		g.logger.Error("rendering page failed", zap.String("page", name), zap.Error(err))
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

// eventFields are the fields of every sign-in log line: never a code or cookie.
func (g *Gateway) eventFields(r *http.Request, t tenant, email string, extra ...zap.Field) []zap.Field {
	if g.MaskAddresses {
		email = maskAddress(email)
	}
	return append([]zap.Field{
		zap.String("tenant", t.Name),
		zap.String("email", email),
		zap.String("client_ip", clientIP(r)),
	}, extra...)
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}

func itoa(n int) string { return strconv.Itoa(n) }

// maskAddress keeps an address's first character and its domain.
func maskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return addr
	}
	return addr[:1] + "***" + addr[at:]
}

// displayName is what guests see for tenant id.
func (g *Gateway) displayName(id string) string {
	if n, ok := g.DisplayNames[id]; ok {
		return n
	}
	if g.DisplayName != "" {
		return g.DisplayName
	}
	return id
}
