package emailotp

import (
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// mailEvents counts what happens to code emails. No address is ever a label.
var mailEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "mail_events_total",
	Help:      "Code emails by mailer, tenant and event: queued, delivered, retrying, failed, refused (queue full).",
}, []string{"mailer", "tenant", "event"})

// signinEvents is the sign-in funnel: how many guests reach each step.
// reason says which limit held a code or refused a send; "" otherwise.
var signinEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "signin_events_total",
	Help: "Sign-in steps by tenant: page_shown, code_requested, code_sent, code_denied, code_held (reason: the limit), " +
		"rate_limited (reason: client IP or tenant), delivered, delivery_failed, verified, wrong_code, code_dead, locked, " +
		"consent_given, signed_out, revoked, invited, guest_reset, guest_deleted, passkey_offered, passkey_enrolled, passkey_declined, passkey_signed_in, " +
		"passkey_refused (reason: unknown, void, denied, cloned, failed), passkey_deleted, " +
		"oidc_redirected, oidc_returned, oidc_unavailable and oidc_fallback (reason: the provider), oidc_refused (reason: wrong_state, " +
		"provider_error, refused, not_verified, outside_domains, claim, denied).",
}, []string{"tenant", "event", "reason"})

// sessionChecks counts what became of requests that carried a session
// cookie: ok, expired, revoked, invalid (not ours, altered, another
// tenant's), forbidden (a valid session this route's policy refuses).
var sessionChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "session_checks_total",
	Help:      "Session cookies checked, by tenant and result: ok, expired, revoked, invalid, forbidden.",
}, []string{"tenant", "result"})

// mailSeconds is how long the mailer takes per attempt.
var mailSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "mail_send_seconds",
	Help:      "Time the mailer took per attempt to send a code email, by mailer and result (ok, error).",
	Buckets:   []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
}, []string{"mailer", "result"})

// queueDepth is how many code emails wait for delivery in this process.
var queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "delivery_queue_depth",
	Help:      "Code emails queued or being retried in this process.",
})

// recordStep is the one place a sign-in step is counted and logged: the
// funnel's counter, and one line on the audit log
// (http.handlers.email_otp.audit) with the fields given, never a code or a
// cookie. Guest requests, the delivery queue, the admin API and the console
// all come here. A step about an address is also kept for its console page.
func recordStep(audit *zap.Logger, tenantKey, email, name, reason string, fields ...zap.Field) {
	signinEvents.WithLabelValues(tenantLabel(directory.TenantName(tenantKey)), name, reason).Inc()
	if serving := servingGateways(tenantKey); len(serving) > 0 {
		// One count per step: the gateways of a tenant share its storage's funnel.
		serving[0].guests.funnel.Add(tenantKey, name)
	}
	if email != "" && name != "page_shown" {
		ev := guestEvent{At: time.Now(), Step: name, Reason: reason}
		for _, f := range fields {
			if f.Key == "admin" {
				ev.By = f.String
			}
		}
		guestEvents.add(tenantKey, email, ev)
	}
	fields = append(fields, zap.String("event", name))
	if reason != "" {
		fields = append(fields, zap.String("reason", reason))
	}
	audit.Info(name, fields...)
}

// sessionResults are a tenant's session-check counters, looked up once:
// they are counted on every signed-in request.
type sessionResults struct{ ok, expired, revoked, invalid, forbidden prometheus.Counter }

var sessionResultsOf sync.Map // tenant label → *sessionResults

func checks(t tenant) *sessionResults {
	if c, ok := sessionResultsOf.Load(t.ID); ok {
		return c.(*sessionResults)
	}
	l := tenantLabel(t.ID)
	c := &sessionResults{
		ok: sessionChecks.WithLabelValues(l, "ok"), expired: sessionChecks.WithLabelValues(l, "expired"),
		revoked: sessionChecks.WithLabelValues(l, "revoked"), invalid: sessionChecks.WithLabelValues(l, "invalid"),
		forbidden: sessionChecks.WithLabelValues(l, "forbidden"),
	}
	if l == t.ID {
		sessionResultsOf.Store(t.ID, c)
	}
	return c
}

// registerMetrics adds the collectors to Caddy's registry; a second config
// loading them again is fine.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{mailEvents, signinEvents, sessionChecks, mailSeconds, queueDepth, storeSeconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// maxTenantLabels bounds the tenant label's values: with `tenant host` behind
// a wildcard site, anyone can invent host names, and each would otherwise be
// a new time series.
const maxTenantLabels = 1000

var tenantLabels = struct {
	sync.Mutex
	seen map[string]struct{}
}{seen: make(map[string]struct{})}

// tenantLabel returns t, or "other" once maxTenantLabels tenants were seen.
func tenantLabel(t string) string {
	tenantLabels.Lock()
	defer tenantLabels.Unlock()
	if _, ok := tenantLabels.seen[t]; ok {
		return t
	}
	if len(tenantLabels.seen) >= maxTenantLabels {
		return "other"
	}
	tenantLabels.seen[t] = struct{}{}
	return t
}
