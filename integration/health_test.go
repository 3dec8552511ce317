package integration

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

type healthReply struct {
	Status string `json:"status"`
	Store  struct {
		Module string  `json:"module"`
		OK     bool    `json:"ok"`
		MS     float64 `json:"latency_ms"`
		Error  string  `json:"error"`
		Feed   string  `json:"change_feed"`
	} `json:"store"`
	Mailer *struct {
		Result string `json:"result"`
	} `json:"mailer_last"`
	Queue   int    `json:"queue_depth"`
	Journal *int64 `json:"journal_depth"`
	Tenants string `json:"tenants"`
}

func healthOf(t *testing.T, r reply) healthReply {
	t.Helper()
	var h healthReply
	if err := json.Unmarshal([]byte(r.body), &h); err != nil {
		t.Fatalf("health %q: %v", r.body, err)
	}
	return h
}

// …/healthz answers loopback clients with the store's state and the
// mailer's last answer; others get nothing; the admin endpoint lists every
// gateway.
func TestHealthOfStoreAndMailer(t *testing.T) {
	e := start(t, gatewayOptions{global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"})
	g := newGuest(t)
	r := g.get(contoso + hostBase + "healthz")
	expectStatus(t, r, http.StatusOK)
	if h := healthOf(t, r); h.Status != "ok" || !h.Store.OK || h.Store.Module != "memory" || h.Mailer != nil || h.Queue != 0 {
		t.Errorf("before any mail: %+v", h)
	}
	g.requestCode(contoso, hostBase, "/", "hal@contoso.com")
	e.smtp.Wait(t, "hal@contoso.com", 1, 10*time.Second)
	waitMailIdle(t)
	if h := healthOf(t, g.get(contoso+hostBase+"healthz")); h.Mailer == nil || h.Mailer.Result != "delivered" {
		t.Errorf("after a delivered code: %+v", h)
	}
	expectStatus(t, g.get(contoso+hostBase+"healthz", "X-Forwarded-For", "203.0.113.9"), http.StatusNotFound)

	var all []healthReply
	if status := adminAPIAt(t, "/email-otp/health", &all); status != http.StatusOK || len(all) != 2 {
		t.Fatalf("admin health: %d %+v", status, all)
	}
	if all[0].Tenants != "host" || !strings.HasPrefix(all[1].Tenants, "path /t/") || all[0].Status != "ok" {
		t.Errorf("admin health: %+v", all)
	}
}

// waitFeed waits until every gateway of the Caddy whose admin endpoint is
// admin says its change feed is in state.
func waitFeed(t *testing.T, admin, state string) {
	t.Helper()
	var last []healthReply
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + admin + "/email-otp/health")
		if err != nil {
			continue
		}
		last = nil
		_ = json.NewDecoder(resp.Body).Decode(&last)
		resp.Body.Close()
		if len(last) > 0 && !slices.ContainsFunc(last, func(h healthReply) bool { return h.Store.Feed != state }) {
			return
		}
	}
	t.Fatalf("the change feed of %s is not %q: %+v", admin, state, last)
}

// With Redis down, the health check says so (503) and says it again once
// Redis is back.
func TestHealthSaysWhenTheStoreIsDown(t *testing.T) {
	redis := redisserver.Start(t)
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.contosoSite("allow *@contoso.com\n\t\tstore redis "+redis.URL(0), ""))
	g := newGuest(t)
	if h := healthOf(t, g.get(contoso+hostBase+"healthz")); h.Status != "ok" || h.Store.Module != "redis" || h.Store.MS <= 0 {
		t.Fatalf("with Redis: %+v", h)
	}
	waitFeed(t, "localhost:2999", "subscribed")
	// Redis's latency is in the metrics, per operation.
	g.requestCode(contoso, hostBase, "/", "hal@contoso.com")
	if n := metrics(t)[`caddy_email_otp_store_seconds_count{op="save_challenge",store="redis"}`]; n < 1 {
		t.Errorf("store_seconds counted %v saved challenges in Redis", n)
	}
	redis.Stop()
	r := g.get(contoso + hostBase + "healthz")
	expectStatus(t, r, http.StatusServiceUnavailable)
	if h := healthOf(t, r); h.Status != "down" || h.Store.OK || h.Store.Error == "" {
		t.Errorf("without Redis: %+v", h)
	}
	waitFeed(t, "localhost:2999", "not subscribed")
	redis.Restart()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r := g.get(contoso + hostBase + "healthz"); r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("healthz never recovered after Redis came back")
		}
	}
}
