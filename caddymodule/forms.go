package emailotp

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/textcheck"
	"github.com/otpgate/caddy-email-otp/templates"
)

const maxFormBytes = 8 << 10

var crossOrigin = http.NewCrossOriginProtection()

// safeRD returns rd if it is a local path inside the tenant's root and outside
// the gateway's own endpoints, else the tenant root. It is checked when it
// comes in and again before it is used.
func safeRD(rd string, t tenant) string {
	if rd == "" || len(rd) > 2048 || !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") {
		return t.Root
	}
	// '#': http.Redirect cleans what follows the path as if it were path,
	// so "/t/acme/#/../../globex/x" would land in globex.
	if textcheck.HasControl(rd) || strings.ContainsAny(rd, `\#`) {
		return t.Root
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return t.Root
	}
	// Decoded, the path must still be clean and inside the root: %2f%2f or
	// %5c would otherwise turn into // or \ at the browser or the backend.
	// Browsers drop tabs and newlines from URLs: "/%09/evil" would become
	// "//evil". No control character may hide in the decoded path.
	if checkPath(u) != nil {
		return t.Root
	}
	p := u.Path
	if !strings.HasPrefix(p, t.Root) {
		// "/t/acme" is the root too, but its cookies' Path is "/t/acme/".
		return t.Root
	}
	if strings.HasPrefix(p, t.Base()) {
		return t.Root
	}
	return rd
}

func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	return ip
}

// fromThisMachine reports whether r was sent from this machine itself: the
// connection's own peer is loopback and no proxy forwarded it. A client IP
// taken from a header is the client's to write (without
// trusted_proxies_strict Caddy takes the left-most X-Forwarded-For entry),
// so it never opens what is for loopback alone.
func fromThisMachine(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return false
	}
	for _, h := range forwardingHeaders(r) {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return true
}

// forwardingHeaders are the headers by which a proxy names the client: the
// usual ones and the server's client_ip_headers.
func forwardingHeaders(r *http.Request) []string {
	hs := []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		for _, h := range srv.ClientIPHeaders {
			hs = append(hs, http.CanonicalHeaderKey(h))
		}
	}
	return hs
}

// warnLooseProxies logs once per gateway that a trusted proxy's request
// came to a server without trusted_proxies_strict: Caddy then takes the
// client IP from the left of X-Forwarded-For, which any client writes, and
// per_ip limits count whatever the client claims. Caddy keeps its trusted
// ranges to itself, so this can only be seen on a request, not at load.
func (g *Gateway) warnLooseProxies(r *http.Request) {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	if !trusted {
		return
	}
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv.TrustedProxiesStrict > 0 {
		return
	}
	g.looseProxies.Do(func() {
		g.log.Warn("email_otp: requests come through trusted_proxies without trusted_proxies_strict: the client IP is the left-most " +
			"X-Forwarded-For entry, which any client writes, so per_ip limits count what clients claim; " +
			"add trusted_proxies_strict to the server's options")
	})
}

// origin is the scheme and host the client asked for, for absolute links
// and the assertion's issuer, in one spelling whatever the client typed
// (lower case, no trailing dot, the port only when it is not the scheme's
// own): a backend sees one issuer, and mail one host.
func origin(r *http.Request) string {
	scheme, defaultPort := "http", "80"
	if isHTTPS(r) {
		scheme, defaultPort = "https", "443"
	}
	host := canonicalHost(r.Host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 address
	}
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" && port != defaultPort {
		host += ":" + port
	}
	return scheme + "://" + host
}

// readForm parses a POST body of limited size and returns its single values of
// names; a missing or repeated name is an error, so one request can't carry
// two addresses or two codes.
func readForm(w http.ResponseWriter, r *http.Request, names ...string) (map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, errors.New("the form could not be read")
	}
	vals := make(map[string]string, len(names))
	for _, n := range names {
		v := r.PostForm[n]
		if len(v) != 1 {
			return nil, errors.New("the form must carry exactly one " + n)
		}
		vals[n] = v[0]
	}
	return vals, nil
}

// checkFormOrigin refuses cross-site posts and forms whose CSRF token does not
// belong to this browser.
func (g *Gateway) checkFormOrigin(w http.ResponseWriter, r *http.Request, t tenant, binding, token string) bool {
	if !g.csrf.fromThisBrowser(r, t, binding, token) {
		g.pages.errorPage(w, r, t, http.StatusForbidden, templates.FormExpiredTitle, templates.FormExpiredText, nil,
			link{t.Base() + "signin", templates.ActionGoToSignin})
		return false
	}
	return true
}

// readPendingForm reads a sign-in form (its csrf and one field) and checks it
// came from this browser's own page; on failure it has answered the request.
func (g *Gateway) readPendingForm(w http.ResponseWriter, r *http.Request, t tenant, field string, retry link) (flow.Pending, map[string]string, bool) {
	form, err := readForm(w, r, "csrf", field)
	if err != nil {
		g.formUnreadable(w, r, t, err, retry)
		return flow.Pending{}, nil, false
	}
	p, _ := g.pending.load(r, t, form["csrf"])
	if !g.checkFormOrigin(w, r, t, p.Nonce, form["csrf"]) {
		return p, nil, false
	}
	return p, form, true
}

// formUnreadable answers a form that arrived incomplete, repeated or too
// large; what exactly was wrong goes to the debug log, not to the page.
func (g *Gateway) formUnreadable(w http.ResponseWriter, r *http.Request, t tenant, err error, retry ...link) {
	g.log.Debug("form refused", zap.String("tenant", t.ID), zap.String("path", r.URL.Path), zap.Error(err))
	g.pages.errorPage(w, r, t, http.StatusBadRequest, templates.FormUnreadableTitle, templates.FormUnreadableText, nil, retry...)
}
