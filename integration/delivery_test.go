package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/otpgate/caddy-email-otp/integration/mailgunapi"
)

var tempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

// waitForPage GETs u until its body holds want, for up to 10s.
func (g *guest) waitForPage(u, want string) reply {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := g.get(u)
		if strings.Contains(r.body, want) || time.Now().After(deadline) {
			expectStatus(g.t, r, http.StatusOK, want)
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusReply is GET …/status.
type statusReply struct{ State, Message string }

// waitForStatus GETs the delivery status until its state is want, for up
// to 10s, as the enter-code page's script does.
func (g *guest) waitForStatus(u, want string) statusReply {
	g.t.Helper()
	var s statusReply
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r := g.get(u, "Accept", "application/json", "Sec-Fetch-Site", "same-origin", "Referer", u)
		expectStatus(g.t, r, http.StatusOK)
		s = statusReply{}
		if err := json.Unmarshal([]byte(r.body), &s); err != nil {
			g.t.Fatalf("status %q: %v", r.body, err)
		}
		if s.State == want {
			return s
		}
	}
	g.t.Fatalf("status never became %q: %+v", want, s)
	return s
}

func TestGuestSeesStillTryingThenSignsIn(t *testing.T) {
	e := start(t, gatewayOptions{extra: "delivery {\n\t\t\tfirst_retry 700ms\n\t\t}"})
	e.smtp.Refuse(tempFail, tempFail)
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/doc", "zoe@contoso.com")
	page := g.waitForPage(contoso+hostBase+"verify", "Still trying to send your code")
	// The page never reloads itself (that would wipe a half-typed code): a
	// script asks …/status, and without JavaScript the guest checks again.
	if strings.Contains(page.body, `http-equiv="refresh"`) || !strings.Contains(page.body, `>Check again</a>`) || !strings.Contains(page.body, `data-status="/.email-otp/status"`) {
		t.Errorf("the still-trying page:\n%s", page.body)
	}
	nonce := regexp.MustCompile(`<script nonce="([^"]+)">`).FindStringSubmatch(page.body)
	if csp := page.Header.Get("Content-Security-Policy"); nonce == nil || !strings.Contains(csp, "script-src 'nonce-"+nonce[1]+"'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("the page's script and its policy do not match: %v, %q", nonce, csp)
	}
	status := g.waitForStatus(contoso+hostBase+"status", "on_its_way")
	if !strings.Contains(status.Message, "zoe@contoso.com") || !strings.Contains(status.Message, "is on its way") {
		t.Errorf("status message %q", status.Message)
	}
	g.waitForPage(contoso+hostBase+"verify", "a sign-in code (8 digits) is on its way")
	code := codeIn(t, e.smtp.Wait(t, "zoe@contoso.com", 1, 10*time.Second).Text)
	if n := e.smtp.Attempts(); n != 3 {
		t.Errorf("%d attempts reached the server, want 3 (two refused)", n)
	}
	landed := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if landed != "/doc" {
		t.Errorf("landed on %q", landed)
	}
}

func TestUndeliverableCodeIsShownAndTroubleAnnounced(t *testing.T) {
	start(t, gatewayOptions{smtpPort: closedPort(t), extra: "delivery {\n\t\t\tattempts 2\n\t\t\tfirst_retry 100ms\n\t\t}"})
	g := newGuest(t)
	g.requestCode(contoso, hostBase, "/doc", "ann@contoso.com")
	page := g.waitForPage(contoso+hostBase+"verify", "We could not deliver a code to")
	// "Send a new code" is the main action now (the layout styles it so for
	// this state), and nothing is left to wait for: the page asks …/status
	// no more (its only script tells whether the device can make a passkey).
	if !strings.Contains(page.body, `class="verify" data-delivery="failed"`) || strings.Contains(page.body, "data-status=") {
		t.Errorf("the failed page:\n%s", page.body)
	}
	// Two more failed attempts make three in a row: every guest is told.
	other := newGuest(t)
	other.requestCode(contoso, hostBase, "/doc", "ben@contoso.com")
	other.waitForPage(contoso+hostBase+"verify", "We could not deliver a code to")
	for _, origin := range []string{contoso, fabrikam} {
		expectStatus(t, newGuest(t).get(origin+hostBase+"signin"), http.StatusOK, "Email delivery is having trouble")
	}
}

func TestSamePagesForAllowedAndDeniedWhileMailerFails(t *testing.T) {
	start(t, gatewayOptions{smtpPort: closedPort(t), extra: "delivery {\n\t\t\tattempts 2\n\t\t\tfirst_retry 100ms\n\t\t}"})
	type seen struct {
		status          int
		location        string
		cookies, verify string
	}
	try := func(email string) seen {
		g := newGuest(t)
		page := g.get(contoso + hostBase + "signin")
		r := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {email}})
		var names []string
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		v := g.waitForPage(contoso+hostBase+"verify", "We could not deliver a code to")
		return seen{r.StatusCode, r.Header.Get("Location"), strings.Join(names, ","), strings.ReplaceAll(scrub(v.body), email, "EMAIL")}
	}
	allowed := try("cat@contoso.com")
	for _, denied := range []string{"dan@blocked.contoso.com", "eve@unlisted.example"} {
		if got := try(denied); got != allowed {
			t.Errorf("%s sees %+v\nallowed address sees %+v", denied, got, allowed)
		}
	}
}

// scrub blanks what differs between any two renderings of a page: tokens and times.
func scrub(page string) string {
	page = inputRE.ReplaceAllString(page, `<input name="$1" value="X"`)
	page = nonceRE.ReplaceAllString(page, "nonce-N")
	return timeRE.ReplaceAllString(page, "HH:MM")
}

// nonceRE finds a CSP nonce, in the header or on the script tag: a fresh
// one per answer.
var nonceRE = regexp.MustCompile(`nonce(-|=")[A-Za-z0-9_-]+`)

func TestFullQueueAsksGuestToComeBack(t *testing.T) {
	e := newEnv(t)
	e.smtp = startSlowSink(t)
	e.load(gatewayOptions{extra: "delivery {\n\t\t\tworkers 1\n\t\t\tcapacity 1\n\t\t}"})
	first := newGuest(t)
	first.requestCode(contoso, hostBase, "/", "fay@contoso.com")
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	r := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"gus@contoso.com"}})
	expectStatus(t, r, http.StatusTooManyRequests, "try again in a minute", "Nothing was sent to you")
	if r.Header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	// The first guest's message was kept and delivered.
	e.smtp.Wait(t, "fay@contoso.com", 1, 10*time.Second)
}

func TestUnloadingTheConfigDeliversQueuedRetries(t *testing.T) {
	e := start(t, gatewayOptions{extra: "delivery {\n\t\t\tfirst_retry 1h\n\t\t}"})
	e.smtp.Refuse(tempFail)
	g := newGuest(t)
	g.requestCode(contoso, hostBase, "/", "hal@contoso.com")
	g.waitForPage(contoso+hostBase+"verify", "Still trying")
	// A config without the gateway: the queue is drained, not dropped.
	e.load(e.bare())
	e.smtp.Wait(t, "hal@contoso.com", 1, 10*time.Second)
}

func TestCodeEmailFormat(t *testing.T) {
	e := start(t, gatewayOptions{extra: "display_name contoso.localhost \"Contoso Shared Docs\""})
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin?rd=/reports/q3")
	expectStatus(t, page, http.StatusOK, "Contoso Shared Docs")
	expectRedirect(t, g.post(contoso+hostBase+"send",
		url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"ida@contoso.com"}, "rd": {"/reports/q3"}},
		"Accept-Language", "de-CH, fr;q=0.8, en;q=0.5", "User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"), http.StatusSeeOther)
	m := e.smtp.Wait(t, "ida@contoso.com", 1, 10*time.Second)
	code := codeIn(t, m.Text)
	if subj := m.Header.Get("Subject"); !strings.Contains(decodeHeader(subj), "Contoso Shared Docs") || strings.Contains(subj, code) {
		t.Errorf("subject %q: want the display name and not the code", decodeHeader(subj))
	}
	if !strings.Contains(m.Text, "Ihr Anmeldecode für Contoso Shared Docs") || !strings.Contains(m.Text, "Firefox unter Linux") || !strings.Contains(m.Text, "/reports/q3") {
		t.Errorf("the text part is not German or lacks the details:\n%s", m.Text)
	}
	lines := strings.Split(strings.TrimRight(m.Text, "\r\n"), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "@contoso.localhost #"+code {
		t.Errorf("last line %q, want the one-time-code line %q", last, "@contoso.localhost #"+code)
	}
	ct := m.Header.Get("Content-Type")
	for h, ok := range map[string]bool{
		"multipart/alternative": strings.HasPrefix(ct, "multipart/alternative"),
		"Date":                  m.Header.Get("Date") != "",
		"Message-ID":            m.Header.Get("Message-Id") != "",
		"From":                  strings.Contains(m.Header.Get("From"), "docs@example.com"),
		"To":                    m.Header.Get("To") == "<ida@contoso.com>" || m.Header.Get("To") == "ida@contoso.com",
		"Auto-Submitted":        m.Header.Get("Auto-Submitted") == "auto-generated",
		"HTML in German":        strings.Contains(m.HTML, `lang="de"`) && strings.Contains(m.HTML, code),
	} {
		if !ok {
			t.Errorf("%s: wrong (Content-Type %q, headers %v)", h, ct, m.Header)
		}
	}
	// A language we lack falls back to English.
	g2 := newGuest(t)
	page = g2.get(contoso + hostBase + "signin")
	g2.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"jo@contoso.com"}}, "Accept-Language", "pt-BR")
	if m := e.smtp.Wait(t, "jo@contoso.com", 1, 10*time.Second); !strings.Contains(m.Text, "Your sign-in code for Contoso Shared Docs") {
		t.Errorf("fallback email is not English:\n%s", m.Text)
	}
}

func TestMailgunMailerThroughCaddy(t *testing.T) {
	api := mailgunapi.Start(t, "mg.example.com", "key-test")
	t.Setenv("MAILGUN_API_KEY", "key-test")
	e := start(t, gatewayOptions{mailer: fmt.Sprintf(`mailer mailgun {
			domain mg.example.com
			api_key {env.MAILGUN_API_KEY}
			from "Shared documents <docs@mg.example.com>"
			region eu
			api_base %s/v3
		}
		delivery {
			first_retry 100ms
		}`, api.URL)})
	_ = e
	api.Answer(http.StatusServiceUnavailable) // one 503 first: retried
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "kim@contoso.com")
	var form map[string][]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && form == nil; time.Sleep(50 * time.Millisecond) {
		if f := api.Forms(); len(f) > 0 {
			form = f[0]
		}
	}
	if form == nil {
		t.Fatal("no message reached the Mailgun API")
	}
	if strings.Join(form["to"], ",") != "kim@contoso.com" || form["html"] == nil {
		t.Errorf("form %v", form)
	}
	code := codeIn(t, strings.Join(form["text"], ""))
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	g.backendView(contoso + "/")
}

func TestMailMetrics(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	g.requestCode(contoso, hostBase, "/", "lou@contoso.com")
	e.smtp.Wait(t, "lou@contoso.com", 1, 10*time.Second)
	want := `caddy_email_otp_mail_events_total{event="delivered",mailer="smtp",tenant="contoso.localhost"}`
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://localhost:2999/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if strings.Contains(body, want) {
			return
		}
	}
	t.Errorf("no %s in the admin endpoint's metrics:\n%s", want, grepLines(body, "email_otp"))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
