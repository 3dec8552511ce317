package emailotp

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/otpgate/caddy-email-otp/templates"
)

// health is how one gateway is doing: its store (reached, and how fast),
// its mailer's last answer, its delivery queue.
type health struct {
	Status string        `json:"status"` // ok, or down when the store can't be reached
	Store  storeHealth   `json:"store"`
	Mailer *mailerAnswer `json:"mailer_last,omitempty"` // none yet: no message sent
	Queue  int           `json:"queue_depth"`
	// Journal, with store redis, is how many code emails wait in Redis for
	// any node (this one's and those of nodes that died), the same
	// answer on every node. Absent without a journal or when Redis is down.
	Journal *int64 `json:"journal_depth,omitempty"`
}

type storeHealth struct {
	Module    string  `json:"module"`
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	// ChangeFeed, for store redis: "subscribed" while sign-outs and guest
	// changes are heard (session checks answered from memory), else
	// "not subscribed" (every check asks Redis).
	ChangeFeed string `json:"change_feed,omitempty"`
}

// checkHealth asks the store one real question, timing the round trip,
// within two seconds: PING for a networked store (its session checks may
// be answered from memory), else whether a made-up session is revoked.
func (g *Gateway) checkHealth(ctx context.Context) health {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	var err error
	if p, ok := g.modules.storeModule.(interface{ Ping(context.Context) error }); ok {
		err = p.Ping(ctx)
	} else {
		_, err = g.modules.store.SessionRevoked(ctx, "healthz", g.service.Now())
	}
	h := health{Status: "ok", Store: storeHealth{Module: g.modules.storeName, OK: err == nil, LatencyMS: float64(time.Since(start).Microseconds()) / 1000}}
	if w, ok := g.modules.storeModule.(interface{ Watching() bool }); ok {
		h.Store.ChangeFeed = map[bool]string{true: "subscribed", false: "not subscribed"}[w.Watching()]
	}
	if err != nil {
		h.Status, h.Store.Error = "down", err.Error()
	}
	h.Mailer = g.queue.last.Load()
	h.Queue = g.queue.Depth()
	if g.journal != nil && err == nil {
		if n, err := g.journal.depth(ctx); err == nil {
			h.Journal = &n
		}
	}
	return h
}

// getHealthz answers …/healthz to requests from this machine (a load
// balancer's own check on the same host, an operator's curl; see
// fromThisMachine): 200 when the store answers, else 503.
func (g *Gateway) getHealthz(w http.ResponseWriter, r *http.Request, t tenant) {
	if !fromThisMachine(r) {
		g.pages.errorPage(w, r, t, http.StatusNotFound, templates.NotFoundTitle, templates.NotFoundText, nil)
		return
	}
	h := g.checkHealth(r.Context())
	writeHealth(w, h.Status == "ok", h)
}

// writeHealth answers 200 with v when ok, else 503.
func writeHealth(w http.ResponseWriter, ok bool, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	neverFramed(w.Header())
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(v)
}

// gatewayHealth is one loaded gateway's health in the admin answer.
type gatewayHealth struct {
	Tenants string `json:"tenants"` // how the gateway finds tenants: host, path /t/, static docs
	health
}

// health answers GET /email-otp/health on the admin endpoint: every loaded
// gateway's health; 503 when any store is down.
func (a *AdminAPI) health(w http.ResponseWriter, r *http.Request) error {
	all := gateways.loaded()
	out := make([]gatewayHealth, 0, len(all))
	ok := true
	for _, g := range all {
		h := g.checkHealth(r.Context())
		ok = ok && h.Status == "ok"
		out = append(out, gatewayHealth{Tenants: g.tenantsLabel(), health: h})
	}
	slices.SortFunc(out, func(a, b gatewayHealth) int { return strings.Compare(a.Tenants, b.Tenants) })
	writeHealth(w, ok, out)
	return nil
}
