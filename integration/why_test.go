package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

type whyReply struct {
	Tenant   string `json:"tenant"`
	Gateways []struct {
		Tenants     string `json:"tenants"`
		MayGetCodes bool   `json:"may_get_codes"`
		Rule        string `json:"rule"`
		Holds       []struct {
			Limit string    `json:"limit"`
			Until time.Time `json:"until"`
			Count int       `json:"count"`
		} `json:"holds"`
	} `json:"gateways"`
	Path *struct {
		Opens bool   `json:"opens"`
		Why   string `json:"why"`
	} `json:"path"`
	RecentCodes []struct {
		Result string `json:"result"`
		Error  string `json:"error"`
	} `json:"recent_codes"`
}

func why(t *testing.T, email, path string) whyReply {
	t.Helper()
	var w whyReply
	p := "contoso.localhost/" + url.PathEscape(email)
	if path != "" {
		p += "?path=" + url.QueryEscape(path)
	}
	if status := adminAPIAt(t, "/email-otp/why/"+p, &w); status != http.StatusOK || len(w.Gateways) != 1 {
		t.Fatalf("why %s: %d %+v", email, status, w)
	}
	return w
}

// adminAPIAt GETs an admin path outside /email-otp/guests/.
func adminAPIAt(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := http.Get("http://localhost:2999" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

func holds(w whyReply) string {
	var names []string
	for _, h := range w.Gateways[0].Holds {
		names = append(names, h.Limit)
	}
	return strings.Join(names, ",")
}

// "Why can't this guest get in?", answered through Caddy's admin API for
// every case an operator meets.
func TestWhyTraceExplainsEachCase(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.contosoSite(`allow *@contoso.com
		block *@blocked.contoso.com
		limits {
			per_address 2 1h
			resend_cooldown off
			lock_after 3 1h
		}`, ""))

	for email, rule := range map[string]string{
		"ann@contoso.com":         "allowed by the pattern *@contoso.com",
		"eve@blocked.contoso.com": "blocked by the pattern *@blocked.contoso.com",
		"joe@unlisted.io":         "on no allow pattern, and not invited",
	} {
		if w := why(t, email, ""); w.Gateways[0].Rule != rule || w.Gateways[0].MayGetCodes != strings.HasPrefix(rule, "allowed") || holds(w) != "" {
			t.Errorf("%s: %+v", email, w.Gateways[0])
		}
	}

	// Invited with paths; then revoked.
	no := false
	adminAPI(t, http.MethodPost, "contoso.localhost", map[string]any{"email": "vic@outside.example", "paths": []string{"/reports/"}, "send_email": &no}, nil)
	if w := why(t, "vic@outside.example", "/reports/q3.pdf"); w.Gateways[0].Rule != "invited" || w.Path == nil || !w.Path.Opens {
		t.Errorf("invited, inside the paths: %+v %+v", w.Gateways[0], w.Path)
	}
	if w := why(t, "vic@outside.example", "/finance/x"); w.Path == nil || w.Path.Opens || !strings.Contains(w.Path.Why, "/reports/") {
		t.Errorf("invited, outside the paths: %+v", w.Path)
	}
	adminAPI(t, http.MethodPost, "contoso.localhost/vic@outside.example/revoke", nil, nil)
	if w := why(t, "vic@outside.example", ""); w.Gateways[0].Rule != "revoked by an admin" || w.Gateways[0].MayGetCodes {
		t.Errorf("revoked: %+v", w.Gateways[0])
	}

	// Rate-limited: the per-address count is reached (and reading it does
	// not count).
	for i := 0; i < 2; i++ {
		newGuest(t).requestCode(contoso, hostBase, "/", "rl@contoso.com")
	}
	for i := 0; i < 2; i++ {
		if w := why(t, "rl@contoso.com", ""); !strings.Contains(holds(w), "per-address limit") || w.Gateways[0].Holds[0].Count != 2 {
			t.Errorf("rate-limited: %+v", w.Gateways[0].Holds)
		}
	}

	// Locked after three wrong tries.
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "lo@contoso.com")
	g.guessWrong(contoso+hostBase, csrf, 3)
	if w := why(t, "lo@contoso.com", ""); !strings.Contains(holds(w), "lock") {
		t.Errorf("locked: %+v", w.Gateways[0].Holds)
	}

	// "This wasn't me".
	newGuest(t).requestCode(contoso, hostBase, "/", "nm@contoso.com")
	link := notMeRE.FindString(e.smtp.Wait(t, "nm@contoso.com", 1, 10*time.Second).Text)
	other := newGuest(t)
	page := other.get(link)
	other.post(contoso+hostBase+"notme", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "t": {formValue(t, page.body, "t")}})
	if w := why(t, "nm@contoso.com", ""); !strings.Contains(holds(w), "notme") {
		t.Errorf("not me: %+v", w.Gateways[0].Holds)
	}

	// A failed delivery, with the server's answer.
	e.smtp.Refuse(permFail)
	newGuest(t).requestCode(contoso, hostBase, "/", "fd@contoso.com")
	waitMailIdle(t)
	// (The mailer's answers are kept per process, across tests: the newest
	// comes first.)
	if w := why(t, "fd@contoso.com", ""); len(w.RecentCodes) == 0 || w.RecentCodes[0].Result != "failed" || !strings.Contains(w.RecentCodes[0].Error, "550") {
		t.Errorf("failed delivery: %+v", w.RecentCodes)
	}
	if w := why(t, "never-asked-why@contoso.com", ""); len(w.RecentCodes) != 0 {
		t.Errorf("codes for an address that asked for none: %+v", w.RecentCodes)
	}

	// Invite-only: no allow pattern admits.
	e.load(e.contosoSite("invite_only", ""))
	if w := why(t, "ann@contoso.com", ""); !strings.HasPrefix(w.Gateways[0].Rule, "invite_only") || w.Gateways[0].MayGetCodes {
		t.Errorf("invite_only: %+v", w.Gateways[0])
	}
}
