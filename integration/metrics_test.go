package integration

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metrics reads Caddy's metrics endpoint: every sample of ours, by its line
// (name and labels).
func metrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_email_otp_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// After a scripted sign-in through Caddy, the funnel and the session checks
// say what happened, step by step; no address is a label.
func TestMetricsFollowTheSignIn(t *testing.T) {
	e := start(t, gatewayOptions{})
	before := metrics(t)
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/x", "meg@contoso.com") // page shown, code sent
	code := codeIn(t, e.smtp.Wait(t, "meg@contoso.com", 1, 10*time.Second).Text)
	waitMailIdle(t)
	g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {wrongCode(code)}})
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	g.backendView(contoso + "/x")
	kept := g.cookie(contoso+"/", "email_otp_session")
	expectRedirect(t, newGuest(t).get(contoso+"/x", "Cookie", kept.Name+"="+kept.Value+"x"), http.StatusFound) // altered
	newGuest(t).requestCode(contoso, hostBase, "/x", "meg@unlisted.example")                                   // page shown, denied
	page := g.get(contoso + hostBase + "signout")
	g.post(contoso+hostBase+"signout", url.Values{"csrf": {formValue(t, page.body, "csrf")}})
	expectRedirect(t, newGuest(t).get(contoso+"/x", "Cookie", kept.Name+"="+kept.Value), http.StatusFound) // signed out
	waitMailIdle(t)
	after := metrics(t)

	funnel := func(event string) string {
		return `caddy_email_otp_signin_events_total{event="` + event + `",reason="",tenant="contoso.localhost"}`
	}
	check := func(result string) string {
		return `caddy_email_otp_session_checks_total{result="` + result + `",tenant="contoso.localhost"}`
	}
	for name, want := range map[string]float64{
		funnel("page_shown"): 2, funnel("code_requested"): 2, funnel("code_sent"): 1, funnel("code_denied"): 1,
		funnel("delivered"): 1, funnel("wrong_code"): 1, funnel("verified"): 1, funnel("signed_out"): 1,
		check("ok"): 1, check("invalid"): 1, check("revoked"): 1,
		`caddy_email_otp_delivery_queue_depth`: 0,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s went up by %v, want %v", name, got, want)
		}
	}
	var sends float64
	for name, v := range after {
		if strings.HasPrefix(name, "caddy_email_otp_mail_send_seconds_count") {
			sends += v - before[name]
		}
		if strings.Contains(name, "@") {
			t.Errorf("an address is a label: %s", name)
		}
	}
	if sends != 1 {
		t.Errorf("mail_send_seconds counted %v attempts, want 1", sends)
	}
}

// The audit log is its own logger: one line per sign-in step, which an
// operator can send apart (here to a file) with Caddy's `log` and `include`.
func TestAuditLogHasOneLinePerStep(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "audit.log")
	e := start(t, gatewayOptions{global: "log audit {\n\t\toutput file " + logFile + "\n\t\tformat json\n\t\tinclude http.handlers.email_otp.audit\n\t}"})
	e.signIn(newGuest(t), contoso, hostBase, "/x", "ada@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "ada@contoso.com", 1, time.Second).Text) // must not be logged
	waitForLog(t, logFile, `"msg":"verified"`)
	logs := waitForLog(t, logFile, `"msg":"delivered"`) // the whole file, once both are in
	for _, step := range []string{"page_shown", "code_requested", "code_sent", "delivered", "verified"} {
		line := grepLines(logs, `"msg":"`+step+`"`)
		if !strings.Contains(line, `"logger":"http.handlers.email_otp.audit"`) || !strings.Contains(line, `"tenant":"contoso.localhost"`) {
			t.Errorf("no audit line for %s:\n%s", step, logs)
		}
	}
	if strings.Contains(logs, code) || strings.Contains(logs, "email_otp_session") || strings.Contains(logs, `"msg":"session issued"`) {
		t.Errorf("the audit log holds a code, a cookie or other logs:\n%s", logs)
	}
}
