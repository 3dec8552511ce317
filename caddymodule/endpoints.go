package caddymodule

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

const maxFormBytes = 8 << 10

var crossOrigin = http.NewCrossOriginProtection()

// serveEndpoint answers the gateway's own endpoints under t.Base().
func (g *Gateway) serveEndpoint(w http.ResponseWriter, r *http.Request, t tenant, endpoint string) {
	type route struct {
		get, post func(http.ResponseWriter, *http.Request, tenant)
	}
	routes := map[string]route{
		"signin":  {get: g.getSignIn},
		"send":    {post: g.postSend},
		"verify":  {get: g.getVerify, post: g.postVerify},
		"signout": {get: g.getSignOut, post: g.postSignOut},
		"consent": {get: g.getConsent, post: g.postConsent},
		"notme":   {get: g.getNotMe, post: g.postNotMe},
		"session": {get: g.getSession},
		"outbox":  {get: g.serveOutbox},
	}
	rt, ok := routes[endpoint]
	if !ok {
		g.errorPage(w, r, t, http.StatusNotFound, "Page not found",
			"There is no such sign-in page. Open the link you were sent again.")
		return
	}
	switch {
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && rt.get != nil:
		rt.get(w, r, t)
	case r.Method == http.MethodPost && rt.post != nil:
		rt.post(w, r, t)
	default:
		var allow []string
		if rt.get != nil {
			allow = append(allow, "GET, HEAD")
		}
		if rt.post != nil {
			allow = append(allow, "POST")
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		g.errorPage(w, r, t, http.StatusMethodNotAllowed, "Not allowed",
			"This page can't be used that way. Open the link you were sent again.")
	}
}

// askToSignIn answers a protected request that has no valid session.
func (g *Gateway) askToSignIn(w http.ResponseWriter, r *http.Request, t tenant) {
	signin := t.Base() + "signin?rd=" + url.QueryEscape(r.URL.RequestURI())
	if wantsHTML(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, signin, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Email-OTP realm="`+strings.ReplaceAll(t.Name, `"`, "")+`", signin="`+t.Base()+`signin"`)
	if wantsHTML(r) {
		g.errorPage(w, r, t, http.StatusUnauthorized, "Please sign in",
			"Your session has ended or you have not signed in yet.", link{signin, "Sign in"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 Unauthorized: sign in at " + t.Base() + "signin\n"))
}

func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// safeRD returns rd if it is a local path inside the tenant's root and outside
// the gateway's own endpoints, else the tenant root. It is checked when it
// comes in and again before it is used.
func safeRD(rd string, t tenant) string {
	if rd == "" || len(rd) > 2048 || !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") {
		return t.Root
	}
	for i := 0; i < len(rd); i++ {
		// '#': http.Redirect cleans what follows the path as if it were
		// path, so "/t/acme/#/../../globex/x" would land in globex.
		if rd[i] < 0x20 || rd[i] == 0x7f || rd[i] == '\\' || rd[i] == '#' {
			return t.Root
		}
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
	if crossOrigin.Check(r) != nil || !g.csrfOK(t, binding, token) {
		g.errorPage(w, r, t, http.StatusForbidden, "This form has expired",
			"For your security the form was refused. Your browser must accept cookies for this site. Start again from the sign-in page.",
			link{t.Base() + "signin", "Go to sign-in"})
		return false
	}
	return true
}

// readPendingForm reads a sign-in form (its csrf and one field) and checks it
// came from this browser's own page; on failure it has answered the request.
func (g *Gateway) readPendingForm(w http.ResponseWriter, r *http.Request, t tenant, field string, retry link) (pendingState, map[string]string, bool) {
	p, _ := g.loadPending(r, t)
	form, err := readForm(w, r, "csrf", field)
	if err != nil {
		g.errorPage(w, r, t, http.StatusBadRequest, "The form was not understood", sentence(err.Error()), retry)
		return p, nil, false
	}
	if !g.checkFormOrigin(w, r, t, p.Nonce, form["csrf"]) {
		return p, nil, false
	}
	return p, form, true
}

var notices = map[string]string{
	"expired": "That code has expired or was replaced by a newer one. Get a new code below.",
	"locked":  "Too many wrong codes. For your security that code no longer works. Get a new code below.",
}

func (g *Gateway) getSignIn(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.loadPending(r, t)
	q := r.URL.Query()
	email := p.Email
	if hint, err := flow.ParseAddress(q.Get("email")); err == nil {
		email = hint // an invitation link names the invited address
	} else if q.Get("change") != "" {
		email = ""
	}
	// The challenge and any held session are abandoned; the nonce and the
	// remembered address stay.
	p.Challenge, p.Held = "", nil
	if err := g.savePending(w, r, t, p); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	g.page(w, r, t, http.StatusOK, templates.PageSignIn, templates.PageData{
		CSRF:    g.csrfToken(t, p.Nonce),
		RD:      safeRD(q.Get("rd"), t),
		Email:   email,
		Notice:  notices[q.Get("reason")],
		Trouble: g.queue.Troubled(),
	})
}

func (g *Gateway) postSend(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "email", link{t.Base() + "signin", "Go to sign-in"})
	if !ok {
		return
	}
	rd := safeRD(r.PostForm.Get("rd"), t)
	device := g.loadDevice(r, t)
	// Delivery starts once this answer is out (see flow.Envelope.AfterAnswer).
	answered := make(chan struct{})
	defer close(answered)
	res, err := g.service.Send(r.Context(), flow.SendRequest{
		Tenant:    t.ID,
		Email:     form["email"],
		Resource:  rd,
		Host:      g.mailHost(r),
		Base:      g.mailOrigin(r) + t.Base(),
		Language:  r.Header.Get("Accept-Language"),
		ClientIP:  clientIP(r),
		UserAgent: r.UserAgent(),
		Browser:   p.Nonce,
		Device:    device.ID,
		KnownTags: device.Tags,

		AfterAnswer: answered,
	})
	switch {
	case errors.Is(err, flow.ErrInvalidAddress):
		g.page(w, r, t, http.StatusUnprocessableEntity, templates.PageSignIn, templates.PageData{
			CSRF: form["csrf"], RD: rd, Email: templates.OneLine(truncate(form["email"], 254)),
			FieldError: sentence(strings.TrimPrefix(err.Error(), flow.ErrInvalidAddress.Error()+": ")),
			Trouble:    g.queue.Troubled(),
		})
		return
	case errors.Is(err, flow.ErrNotPermitted):
		g.logger.Info("code not sent: address may not sign in (revealed)", g.eventFields(r, t, res.Email)...)
		g.page(w, r, t, http.StatusForbidden, templates.PageSignIn, templates.PageData{
			CSRF: form["csrf"], RD: rd, Email: res.Email,
			FieldError: res.Email + " may not sign in to " + g.displayName(t.Name) + ". Use the address you were invited with.",
		})
		return
	case errors.Is(err, flow.ErrBusy):
		mailEvents.WithLabelValues(g.mailerName, tenantLabel(t.Name), "refused").Inc()
		g.logger.Warn("code not queued: the delivery queue is full", g.eventFields(r, t, "")...)
		w.Header().Set("Retry-After", "60")
		g.errorPage(w, r, t, http.StatusServiceUnavailable, "Please try again in a minute",
			"Many sign-in codes are being sent right now, so yours could not be sent. Nothing was sent to you. Please try again in a minute.",
			link{t.Base() + "signin?rd=" + url.QueryEscape(rd), "Try again"})
		return
	case errors.Is(err, flow.ErrRateLimited):
		var rl flow.RateLimitError
		errors.As(err, &rl)
		g.rateLimited(w, r, t, rl, rd)
		return
	case err != nil:
		g.internalError(w, r, t, err)
		return
	}
	if !res.Held.IsZero() {
		// Answered as a send, for every address alike; a challenge this
		// browser already waits on for the address stays.
		g.logger.Info("code not sent: held by a limit", g.eventFields(r, t, res.Email, zap.String("why", res.HeldWhy), zap.Time("until", res.Held))...)
		if p.Email != res.Email {
			p.Challenge = ""
		}
		p.Email, p.RD, p.HeldUntil = res.Email, rd, res.Held.Unix()
		if err := g.savePending(w, r, t, p); err != nil {
			g.internalError(w, r, t, err)
			return
		}
		http.Redirect(w, r, t.Base()+"verify", http.StatusSeeOther)
		return
	}
	p.HeldUntil = 0
	if res.Permitted {
		g.logger.Info("code queued", g.eventFields(r, t, res.Challenge.Email)...)
	} else {
		g.logger.Info("code not sent: address may not sign in", g.eventFields(r, t, res.Challenge.Email)...)
	}
	p.Challenge, p.Email, p.RD = res.Challenge.ID, res.Challenge.Email, rd
	if err := g.savePending(w, r, t, p); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	http.Redirect(w, r, t.Base()+"verify", http.StatusSeeOther)
	_ = http.NewResponseController(w).Flush()
}

func (g *Gateway) getVerify(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.loadPending(r, t)
	ch, err := g.service.Pending(r.Context(), t.ID, p.Challenge)
	if err != nil {
		if !errors.Is(err, flow.ErrChallengeNotFound) {
			g.internalError(w, r, t, err)
			return
		}
		if p.held(g.service.Now()) {
			// Held by a limit with no code of this browser's: the page a
			// sent code would show, with when to ask again.
			g.verifyPage(w, r, t, p, flow.Challenge{Delivery: flow.DeliverySent, MaxAttempts: 1}, http.StatusOK, "")
			return
		}
		reason := "expired"
		if p.Challenge == "" {
			reason = ""
		}
		g.backToSignIn(w, r, t, p, reason)
		return
	}
	g.verifyPage(w, r, t, p, ch, http.StatusOK, "")
}

// deliveryRefresh is how often the enter-code page reloads itself while
// delivery is in trouble, so a guest without JavaScript sees the outcome.
// "Queued" and "sent" look alike (a decoy of an address that may not sign
// in is "sent" at once, a real code is "queued" for a moment), so neither
// reloads.
var deliveryRefresh = map[flow.DeliveryState]int{flow.DeliveryRetrying: 5}

func (g *Gateway) verifyPage(w http.ResponseWriter, r *http.Request, t tenant, p pendingState, ch flow.Challenge, status int, fieldError string) {
	data := templates.PageData{
		CSRF:       g.csrfToken(t, p.Nonce),
		RD:         safeRD(p.RD, t),
		Email:      p.Email,
		TriesLeft:  ch.TriesLeft(),
		CodeLength: g.service.CodeLength(),
		FieldError: fieldError,
		Delivery:   ch.Delivery.String(),
		ExpiresAt:  ch.ExpiresAt.UTC().Format("15:04 MST"),
	}
	if fieldError == "" {
		data.Refresh = deliveryRefresh[ch.Delivery]
	}
	if p.held(g.service.Now()) {
		data.Notice = "A code was sent to this address a short while ago. Check your inbox and spam folder; you can ask for a new code after " +
			time.Unix(p.HeldUntil, 0).UTC().Format("15:04:05 MST") + "."
	}
	if ch.ExpiresAt.IsZero() {
		data.ExpiresAt = ""
	}
	g.page(w, r, t, status, templates.PageVerify, data)
}

func (g *Gateway) backToSignIn(w http.ResponseWriter, r *http.Request, t tenant, p pendingState, reason string) {
	target := t.Base() + "signin?rd=" + url.QueryEscape(safeRD(p.RD, t))
	if reason != "" {
		target += "&reason=" + reason
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (g *Gateway) postVerify(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "code", link{t.Base() + "verify", "Enter the code again"})
	if !ok {
		return
	}
	if p.Challenge == "" && !p.held(g.service.Now()) {
		g.backToSignIn(w, r, t, p, "")
		return
	}
	res, err := g.service.Verify(r.Context(), t.ID, p.Challenge, form["code"])
	if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	switch res.Outcome {
	case flow.Verified:
		if res.NeedsConsent {
			p.Challenge, p.Held = "", &res.Session
			if err := g.savePending(w, r, t, p); err != nil {
				g.internalError(w, r, t, err)
				return
			}
			g.logger.Info("code verified; asking for consent", g.eventFields(r, t, res.Email)...)
			http.Redirect(w, r, t.Base()+"consent", http.StatusSeeOther)
			return
		}
		g.issueSession(w, r, t, p, res.Session)
	case flow.WrongCode:
		g.logger.Info("verify failed: wrong code", g.eventFields(r, t, res.Email, zap.Int("tries_left", res.TriesLeft))...)
		msg := "That code is not right. You have " + plural(res.TriesLeft, "try", "tries") + " left."
		g.verifyPage(w, r, t, p, res.Challenge, http.StatusUnprocessableEntity, msg)
	case flow.Malformed:
		msg := "Enter the " + itoa(g.service.CodeLength()) + "-digit code from the email."
		g.verifyPage(w, r, t, p, res.Challenge, http.StatusUnprocessableEntity, msg)
	case flow.Locked:
		g.logger.Warn("verify failed: code locked after too many wrong tries", g.eventFields(r, t, res.Email)...)
		g.backToSignIn(w, r, t, p, "locked")
	default:
		g.logger.Info("verify failed: code expired or replaced", g.eventFields(r, t, p.Email)...)
		g.backToSignIn(w, r, t, p, "expired")
	}
}

// issueSession sets the session cookie and sends the guest on to the link
// they first opened.
func (g *Gateway) issueSession(w http.ResponseWriter, r *http.Request, t tenant, p pendingState, s flow.Session) {
	if err := g.setSession(w, r, t, s); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	if err := g.rememberDevice(w, r, t, s.Email); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	// A fresh nonce: nothing from before sign-in carries over.
	rd := safeRD(p.RD, t)
	if err := g.savePending(w, r, t, pendingState{Nonce: flow.RandomToken(), Email: s.Email}); err != nil {
		g.internalError(w, r, t, err)
		return
	}
	g.logger.Info("session issued", g.eventFields(r, t, s.Email, zap.Time("expires", s.Expiry()))...)
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

func (g *Gateway) getConsent(w http.ResponseWriter, r *http.Request, t tenant) {
	p, _ := g.loadPending(r, t)
	if p.Held == nil {
		g.backToSignIn(w, r, t, p, "")
		return
	}
	g.page(w, r, t, http.StatusOK, templates.PageConsent, templates.PageData{
		CSRF: g.csrfToken(t, p.Nonce), Email: p.Held.Email, RD: safeRD(p.RD, t),
	})
}

// postConsent redeems the held session on "accept"; "cancel" drops it and
// nothing is recorded.
func (g *Gateway) postConsent(w http.ResponseWriter, r *http.Request, t tenant) {
	p, form, ok := g.readPendingForm(w, r, t, "decision", link{t.Base() + "signin", "Go to sign-in"})
	if !ok {
		return
	}
	held := p.Held
	if held == nil || held.Tenant != t.ID || g.service.Now().Unix() >= held.ExpiresAt {
		g.backToSignIn(w, r, t, p, "")
		return
	}
	if form["decision"] != "accept" {
		p.Held = nil
		if err := g.savePending(w, r, t, p); err != nil {
			g.internalError(w, r, t, err)
			return
		}
		g.logger.Info("consent declined; not signed in", g.eventFields(r, t, held.Email)...)
		g.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{
			Notice: "You did not sign in, and " + g.displayName(t.Name) + " was not told your address.",
		})
		return
	}
	if _, err := g.service.Redeem(r.Context(), *held); errors.Is(err, directory.ErrRevoked) {
		g.backToSignIn(w, r, t, p, "")
		return
	} else if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	g.issueSession(w, r, t, p, *held)
}

// forbidden answers a signed-in guest whom this route's policy or the
// guest's own paths do not admit: a page, never a redirect loop.
func (g *Gateway) forbidden(w http.ResponseWriter, r *http.Request, t tenant, email string) {
	g.logger.Info("access refused: signed in, not admitted here", g.eventFields(r, t, email, zap.String("path", r.URL.Path))...)
	g.page(w, r, t, http.StatusForbidden, templates.PageForbidden, templates.PageData{
		Email: email,
		RD:    safeRD(r.URL.RequestURI(), t),
	})
}

func (g *Gateway) getSignOut(w http.ResponseWriter, r *http.Request, t tenant) {
	all, err := g.allSessions(r, t)
	if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	if len(all) == 0 {
		g.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{})
		return
	}
	g.page(w, r, t, http.StatusOK, templates.PageSignOut, templates.PageData{
		CSRF: g.csrfToken(t, all[0].session.ID), Email: all[0].session.Email,
	})
}

// postSignOut ends every session the request carries for the tenant: after a
// session conflict, the planted one ends too.
func (g *Gateway) postSignOut(w http.ResponseWriter, r *http.Request, t tenant) {
	all, err := g.allSessions(r, t)
	if err != nil {
		g.internalError(w, r, t, err)
		return
	}
	if len(all) > 0 {
		token := ""
		if form, err := readForm(w, r, "csrf"); err == nil {
			token = form["csrf"]
		}
		if !g.checkFormOrigin(w, r, t, all[0].session.ID, token) {
			return
		}
		for _, s := range all {
			if err := g.service.SignOut(r.Context(), s.session); err != nil {
				g.internalError(w, r, t, err)
				return
			}
			g.logger.Info("signed out", g.eventFields(r, t, s.session.Email)...)
		}
	}
	g.setCookie(w, r, t, sessionCookie, "", time.Time{})
	g.page(w, r, t, http.StatusOK, templates.PageSignedOut, templates.PageData{})
}

// sessionConflict answers a request with two different sessions for the
// tenant: no one's identity goes to the backend, and signing out ends both.
func (g *Gateway) sessionConflict(w http.ResponseWriter, r *http.Request, t tenant) {
	g.logger.Warn("request refused: two different sessions for one tenant (a planted cookie?)", g.eventFields(r, t, "", zap.String("path", r.URL.Path))...)
	g.errorPage(w, r, t, http.StatusBadRequest, "Two sign-ins at once",
		"Your browser holds two different sign-ins for this shared space, so we can't tell who you are. Sign out, then sign in again.",
		link{t.Base() + "signout", "Sign out"})
}

// sessionJSON is the body of GET …/session.
type sessionJSON struct {
	Email    string    `json:"email"`
	Tenant   string    `json:"tenant"`
	Status   string    `json:"status"`
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
}

func (g *Gateway) getSession(w http.ResponseWriter, r *http.Request, t tenant) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if !sessionReadAllowed(r, t) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"the session is shown only to this tenant's own pages"}` + "\n"))
		return
	}
	s, guest, ok, err := g.authenticate(r, t)
	switch {
	case errors.Is(err, errSessionConflict):
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":"two different sessions; sign out and in again"}` + "\n"))
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"session check unavailable"}` + "\n"))
	case !ok:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"no session"}` + "\n"))
	default:
		_ = json.NewEncoder(w).Encode(sessionJSON{
			Email: s.Email, Tenant: t.Name, Status: string(guest.Status),
			IssuedAt: time.Unix(s.IssuedAt, 0).UTC(), Expires: s.Expiry(),
		})
	}
}

// sessionReadAllowed lets the session's JSON go to plain clients and to
// requests from this tenant's own pages, never to another site's script nor,
// where the browser tells, to a page of another path tenant (same origin,
// other tenant). A browser's request from a page (Sec-Fetch-Site:
// same-origin, not a navigation) must show a Referer inside the tenant root
// when tenants share the origin; browsers send it by default.
func sessionReadAllowed(r *http.Request, t tenant) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != origin(r) {
		return false
	}
	if t.Root == "/" {
		return true
	}
	ref, hasRef := r.Header["Referer"]
	if hasRef {
		u, err := url.Parse(ref[0])
		return err == nil && u.Host == r.Host && strings.HasPrefix(u.Path, t.Root)
	}
	return site != "same-origin" || r.Header.Get("Sec-Fetch-Mode") == "navigate"
}

// serveOutbox shows the dev mailer's outbox to loopback clients; to everyone
// else, and with any other mailer, it does not exist.
func (g *Gateway) serveOutbox(w http.ResponseWriter, r *http.Request, t tenant) {
	dev, isDev := g.mailer.(*DevMailer)
	ip := net.ParseIP(clientIP(r))
	if !isDev || ip == nil || !ip.IsLoopback() {
		g.errorPage(w, r, t, http.StatusNotFound, "Page not found", "There is no such page.")
		return
	}
	var entries []templates.OutboxEntry
	for _, e := range dev.Messages() {
		entries = append(entries, templates.OutboxEntry{
			At: e.At.UTC().Format(time.RFC3339), To: e.To, Subject: e.Subject, Text: e.Text,
		})
	}
	g.page(w, r, t, http.StatusOK, templates.PageOutbox, templates.PageData{Outbox: entries})
}

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

// origin is the scheme and host the client asked for, for absolute links.
func origin(r *http.Request) string {
	scheme := "http"
	if isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// maskAddress keeps an address's first character and its domain.
func maskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return addr
	}
	return addr[:1] + "***" + addr[at:]
}
