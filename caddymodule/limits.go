package emailotp

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

// Limit is Count events per Window.
type Limit struct {
	// Events allowed per window; 0 turns the limit off. Default: per limit
	// (see LimitsConfig).
	Count int `json:"count,omitempty"`
	// The fixed window, starting at the first event. Default: per limit
	// (see LimitsConfig).
	Window caddy.Duration `json:"window,omitempty"`
}

// LimitsConfig bounds how often codes are sent and guessed. Limits about an
// address hold quietly (the guest sees the enter-code page with a note when
// to ask again, whether or not the address may sign in); limits about the
// client IP or the tenant answer 429.
type LimitsConfig struct {
	// Codes per tenant and address. Default: 10 per 1h.
	PerAddress *Limit `json:"per_address,omitempty"`
	// Codes per client IP (Caddy's client_ip: trusted_proxies are honoured,
	// X-Forwarded-For alone is not). Default: 50 per 1h.
	PerIP *Limit `json:"per_ip,omitempty"`
	// Codes per tenant. Default: 5000 per 1h.
	PerTenant *Limit `json:"per_tenant,omitempty"`
	// Time between two codes for one tenant and address; "off" in the
	// Caddyfile (-1 in JSON) turns it off. Default: 30s.
	ResendCooldown caddy.Duration `json:"resend_cooldown,omitempty"`
	// No new code after a dead one for this long, doubling with each further
	// dead code up to BackoffMax. Default: 1m.
	Backoff caddy.Duration `json:"backoff,omitempty"`
	// Default: 1h.
	BackoffMax caddy.Duration `json:"backoff_max,omitempty"`
	// Consecutive wrong tries that lock the address. Default: 100 (NIST).
	LockAfter int `json:"lock_after,omitempty"`
	// How long the lock lasts, and the window the tries are counted in.
	// Default: 24h.
	LockFor caddy.Duration `json:"lock_for,omitempty"`
	// How long codes stop after "this wasn't me". Default: 1h.
	NotMe caddy.Duration `json:"not_me,omitempty"`
}

func (l *LimitsConfig) applyDefaults() {
	def := func(p **Limit, n int, w time.Duration) {
		if *p == nil {
			*p = &Limit{Count: n, Window: caddy.Duration(w)}
		}
	}
	def(&l.PerAddress, 10, time.Hour)
	def(&l.PerIP, 50, time.Hour)
	def(&l.PerTenant, 5000, time.Hour)
	for _, d := range []struct {
		p   *caddy.Duration
		def time.Duration
	}{
		{&l.ResendCooldown, 30 * time.Second}, {&l.Backoff, time.Minute}, {&l.BackoffMax, time.Hour},
		{&l.LockFor, 24 * time.Hour}, {&l.NotMe, time.Hour},
	} {
		if *d.p == 0 {
			*d.p = caddy.Duration(d.def)
		}
	}
	if l.LockAfter == 0 {
		l.LockAfter = 100
	}
}

func (l *LimitsConfig) check() error {
	if l.LockAfter < 1 || l.LockAfter > 100 {
		return fmt.Errorf("limits: lock_after %d: use 1 to 100 (NIST SP 800-63B allows at most 100 consecutive failures)", l.LockAfter)
	}
	for name, r := range map[string]*Limit{"per_address": l.PerAddress, "per_ip": l.PerIP, "per_tenant": l.PerTenant} {
		if r.Count < 0 || r.Window <= 0 {
			return fmt.Errorf("limits: %s: use a count and a positive window, like 10 1h", name)
		}
	}
	return nil
}

func (l *LimitsConfig) flowLimits() flow.Limits {
	rate := func(r *Limit) flow.Rate { return flow.Rate{N: r.Count, Window: time.Duration(r.Window)} }
	cooldown := time.Duration(l.ResendCooldown)
	if cooldown < 0 {
		cooldown = 0
	}
	return flow.Limits{
		PerAddress:  rate(l.PerAddress),
		PerIP:       rate(l.PerIP),
		PerTenant:   rate(l.PerTenant),
		Cooldown:    cooldown,
		BackoffBase: time.Duration(l.Backoff),
		BackoffMax:  time.Duration(l.BackoffMax),
		LockAfter:   l.LockAfter,
		LockFor:     time.Duration(l.LockFor),
		NotMeFor:    time.Duration(l.NotMe),
	}
}

// rateLimited answers a limit about the client or the tenant.
func (g *Gateway) rateLimited(w http.ResponseWriter, r *http.Request, t tenant, rl flow.RateLimitError, rd string) {
	g.log.Warn("code not sent: rate limit", g.log.fields(r, t, "", zap.String("scope", rl.Scope), zap.Time("until", rl.Until))...)
	wait := max(time.Until(rl.Until).Round(time.Second), time.Second)
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())))
	g.pages.errorPage(w, r, t, http.StatusTooManyRequests, templates.RateLimitedTitle, templates.RateLimitedText,
		templates.Vars{"Wait": g.pages.words(r).Wait(wait)},
		link{t.Base() + "signin?rd=" + url.QueryEscape(rd), templates.ActionBackToSignin})
}
