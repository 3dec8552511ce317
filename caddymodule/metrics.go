package caddymodule

import (
	"errors"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// mailEvents counts what happens to code emails. No address is ever a label.
var mailEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: "caddy",
	Subsystem: "email_otp",
	Name:      "mail_events_total",
	Help:      "Code emails by mailer, tenant and event: queued, delivered, retried, failed, refused (queue full).",
}, []string{"mailer", "tenant", "event"})

// registerMetrics adds the collectors to Caddy's registry; a second config
// loading them again is fine.
func registerMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{mailEvents} {
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
