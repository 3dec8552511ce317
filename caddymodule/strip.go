package emailotp

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/otpgate/caddy-email-otp/internal/hygiene"
)

func init() {
	caddy.RegisterModule(IdentityStrip{})
}

// IdentityStrip removes client-sent copies of the identity headers and the
// assertion (and their case and '_' variants, Connection tokens and
// trailers naming them) and passes the request on. `email_otp @matcher { … }` puts one in front of
// the gateway for the requests the matcher leaves out: a backend behind the
// same site must never take a client's X-Auth-Email for the gateway's.
type IdentityStrip struct {
	// Names of the identity headers, as in the gateway. Default: the
	// gateway's defaults (X-Auth-Email, X-Auth-Tenant, X-Auth-Method,
	// X-Auth-Session-Expires, X-Auth-Guest-Status).
	Headers *HeaderNames `json:"headers,omitempty"`
	// The assertion's header, as in the gateway; X-Auth-Assertion is
	// removed in any case. Default: none.
	AssertionHeader string `json:"assertion_header,omitempty"`

	names hygiene.Headers
}

// CaddyModule returns the Caddy module information.
func (IdentityStrip) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp_strip",
		New: func() caddy.Module { return new(IdentityStrip) },
	}
}

// Provision implements caddy.Provisioner.
func (s *IdentityStrip) Provision(caddy.Context) error {
	if s.Headers == nil {
		s.Headers = &HeaderNames{}
	}
	s.Headers.applyDefaults()
	s.names = clientForbidden(s.Headers, s.AssertionHeader)
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *IdentityStrip) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s.names.StripClient(r)
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*IdentityStrip)(nil)
	_ caddyhttp.MiddlewareHandler = (*IdentityStrip)(nil)
)
