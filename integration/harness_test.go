package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

const httpPort = 9080

// backendSeen is what the test backend reports about a request it received.
type backendSeen struct {
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
}

// startBackend starts an HTTP backend that answers every request with JSON of
// what it received.
func startBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(backendSeen{Path: r.URL.RequestURI(), Headers: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// env is one running Caddy with its SMTP server and backend.
type env struct {
	t       *testing.T
	storage string // Caddy's file storage: keys and the guest directory
	tester  *caddytest.Tester
	smtp    *smtpsink.Sink
	backend *httptest.Server
}

// gatewayOptions are extra lines inside every email_otp block.
type gatewayOptions struct {
	extra    string // more options
	smtpPort int    // 0: the env's sink
	mailer   string // replaces the SMTP mailer block, e.g. "mailer dev"
	global   string // more global options
}

// globalOptions is the global block every test config starts with: the
// admin API and ports the tests use, no grace period, storage in dir, and
// more lines.
func globalOptions(dir string, more ...string) string {
	return fmt.Sprintf("{\n\tadmin localhost:2999\n\thttp_port %d\n\thttps_port 9443\n\tgrace_period 1ns\n\tstorage file_system %s\n\t%s\n}\n",
		httpPort, dir, strings.Join(more, "\n\t"))
}

// smtpMailer is the mailer block that sends to the env's SMTP sink on port
// (0: the env's own).
func (e *env) smtpMailer(port int) string {
	if port == 0 {
		port = e.smtp.Port
	}
	return fmt.Sprintf(`mailer smtp {
			host 127.0.0.1
			port %d
			tls none
			from "Shared documents <docs@example.com>"
			timeout 3s
		}`, port)
}

// caddyfile returns the test config: two host tenants, path tenants under /t/.
func (e *env) caddyfile(o gatewayOptions) string {
	backend := strings.TrimPrefix(e.backend.URL, "http://")
	mailer := o.mailer
	if mailer == "" {
		mailer = e.smtpMailer(o.smtpPort)
	}
	block := fmt.Sprintf(`
		allow *@contoso.com *@*.partner.org alice@gmail.com
		block *@blocked.contoso.com
		%s
		%s
		%s`, mailer, testLimits, o.extra)
	return globalOptions(e.storage, o.global) + fmt.Sprintf(`http://contoso.localhost:%[1]d, http://fabrikam.localhost:%[1]d {
	email_otp {
		tenant host
		%[2]s
	}
	reverse_proxy %[3]s {
		header_up X-Placeholder-Id {http.auth.user.id}
		header_up X-Placeholder-Email {http.auth.user.email}
		header_up X-Placeholder-Tenant {http.auth.user.tenant}
	}
}
http://localhost:%[1]d {
	email_otp {
		tenant path /t/
		tenants acme globex evil contoso.localhost
		%[2]s
	}
	reverse_proxy %[3]s {
		header_up X-Placeholder-Id {http.auth.user.id}
		header_up X-Placeholder-Email {http.auth.user.email}
		header_up X-Placeholder-Tenant {http.auth.user.tenant}
	}
}
`, httpPort, block, backend)
}

// start loads a config into the in-process Caddy.
func start(t *testing.T, o gatewayOptions) *env {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(o)
	return e
}

// testLimits lift the sending limits that a test run from one client IP,
// asking for many codes quickly, would otherwise meet; the limits have tests
// of their own.
const testLimits = `limits {
			per_address 1000 1h
			per_ip 100000 1h
			per_tenant 100000 1h
			resend_cooldown off
		}`

// contosoSite is a config of one site, contoso.localhost, whose gateway has
// the given policy lines, with more handlers before the proxy.
func (e *env) contosoSite(policy, handlers string) string {
	return e.site("http://contoso.localhost:9080", policy, handlers)
}

// financeSite is contoso with the gateway lines and look, and a /finance/*
// route whose own gateway admits cfo@contoso.com alone. That gateway answers
// the route's "not allowed" page, so it carries the same look (display name,
// branding), as an operator's snippet would give it.
func (e *env) financeSite(lines, look string) string {
	return e.contosoSite(lines+"\n\t\t"+look, `route /finance/* {
		email_otp {
			allow cfo@contoso.com
			`+look+`
		}
	}`)
}

// limitsUnlessGiven is testLimits, unless the gateway's lines set limits of
// their own (a test of the limits).
func limitsUnlessGiven(lines string) string {
	if strings.Contains(lines, "limits {") {
		return ""
	}
	return testLimits
}

// site is a config of one site at address whose gateway has the given lines
// (policy and more), with more handlers before the proxy.
func (e *env) site(address, gatewayLines, handlers string) string {
	return globalOptions(e.storage) + fmt.Sprintf(`%s {
	email_otp {
		%s
		%s
		%s
	}
	%s
	reverse_proxy %s
}
`, address, gatewayLines, limitsUnlessGiven(gatewayLines), e.smtpMailer(0), handlers, strings.TrimPrefix(e.backend.URL, "http://"))
}

// newEnv starts a test's world: storage, a backend (no SMTP server yet), and
// a Caddy that holds nothing from earlier tests. The memory store lives in a pool that survives
// reloads, so without the bare config first a test would meet the codes,
// limits and sign-outs of the test before it (and of itself, under
// go test -count=N).
func newEnv(t *testing.T) *env {
	e := &env{t: t, storage: storageDir(t), backend: startBackend(t)}
	e.load(e.bare())
	return e
}

// storageDir is a temporary directory for Caddy's storage. Not t.TempDir:
// Caddy's background storage cleaning may still write a lock file in it
// while the test ends, and TempDir's cleanup would fail the test for it.
func storageDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "email-otp-storage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 5 && os.RemoveAll(dir) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}

// waitPast returns once the clock has passed at. Caddy runs in this process,
// so the server and the test read one clock: a deadline the server set from
// an instant before the test's at (an answer's arrival plus a lifetime) has
// passed for the server as well. Tests wait on it instead of a guessed sleep.
func waitPast(at time.Time) {
	time.Sleep(time.Until(at) + time.Millisecond)
}

// bare is a config without the gateway: loading it drops every pooled
// value, as a new process would start without them.
func (e *env) bare() string {
	return globalOptions(e.storage) + "http://localhost:9080 {\n\trespond \"down for maintenance\" 503\n}\n"
}

// load loads a gateway config, or a whole Caddyfile given as a string.
func (e *env) load(config any) {
	e.t.Helper()
	cfg, ok := config.(string)
	if !ok {
		cfg = e.caddyfile(config.(gatewayOptions))
	}
	e.tester = caddytest.NewTester(e.t)
	e.tester.InitServer(cfg, "caddyfile")
	if e.t.Failed() {
		e.t.FailNow()
	}
	settle(e.t)
	guestConnections.closeIdle()
}

// guestConnections are the transports of every guest. After a reload their
// kept-alive connections lead to the previous server, which closes them (1ns
// grace period): a browser would open a new one, and so must the guests.
var guestConnections = &transports{all: map[*http.Transport]bool{}}

type transports struct {
	mu  sync.Mutex
	all map[*http.Transport]bool
}

func (ts *transports) add(t *testing.T, tr *http.Transport) {
	ts.mu.Lock()
	ts.all[tr] = true
	ts.mu.Unlock()
	t.Cleanup(func() {
		ts.mu.Lock()
		delete(ts.all, tr)
		ts.mu.Unlock()
	})
}

func (ts *transports) closeIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for tr := range ts.all {
		tr.CloseIdleConnections()
	}
}

// settle waits until the new config alone answers on the HTTP port: with a
// 1ns grace period the previous config's server closes connections it
// accepted a moment before the switch, which a test would see as EOF.
func settle(t *testing.T) {
	t.Helper()
	ok := 0
	for i := 0; i < 200 && ok < 5; i++ {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", httpPort))
		if err != nil {
			ok = 0
			time.Sleep(10 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		ok++
	}
}

// guest is one browser: its own cookie jar, redirects not followed.
type guest struct {
	t      *testing.T
	client *http.Client
	jar    *cookiejar.Jar
}

func newGuest(t *testing.T) *guest {
	jar, _ := cookiejar.New(nil)
	tr := caddytest.CreateTestingTransport()
	guestConnections.add(t, tr)
	return &guest{t: t, jar: jar, client: &http.Client{
		Transport: tr,
		Jar:       jar,
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

type reply struct {
	*http.Response
	body string
}

func (g *guest) do(req *http.Request) reply {
	g.t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return reply{resp, string(b)}
}

func (g *guest) get(u string, headers ...string) reply {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return g.do(req)
}

func (g *guest) post(u string, form url.Values, headers ...string) reply {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return g.do(req)
}

func (g *guest) cookie(u, name string) *http.Cookie {
	pu, _ := url.Parse(u)
	for _, c := range g.jar.Cookies(pu) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var (
	timeRE  = regexp.MustCompile(`\d\d:\d\d [A-Z]+`)
	inputRE = regexp.MustCompile(`<input[^>]*name="([a-z]+)"[^>]*value="([^"]*)"`)
	codeRE  = regexp.MustCompile(`(?m)^\s+(\d{6,12})\s*$`)
)

// formValue returns the value of the first input called name in an HTML page.
func formValue(t testing.TB, page, name string) string {
	t.Helper()
	for _, m := range inputRE.FindAllStringSubmatch(page, -1) {
		if m[1] == name {
			return htmlUnescape(m[2])
		}
	}
	t.Fatalf("no input %q in page:\n%s", name, page)
	return ""
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&#43;", "+", "&quot;", `"`)
	return r.Replace(s)
}

// codeIn returns the code in the text part of a code email.
func codeIn(t testing.TB, text string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no code in email text:\n%s", text)
	}
	return m[1]
}

// expectRedirect checks a 3xx status and returns the Location.
func expectRedirect(t *testing.T, r reply, status int) string {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	return r.Header.Get("Location")
}

func expectStatus(t *testing.T, r reply, status int, contains ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Fatalf("%s %s: body lacks %q:\n%s", r.Request.Method, r.Request.URL, c, r.body)
		}
	}
}

// signInUpTo walks a guest from a protected URL to the verify page and
// returns the verify page's CSRF token; origin is e.g. http://contoso.localhost:9080.
func (g *guest) requestCode(origin, base, protected, email string) (csrf string) {
	g.t.Helper()
	loc := expectRedirect(g.t, g.get(origin+protected), http.StatusFound)
	wantLoc := base + "signin?rd=" + url.QueryEscape(protected)
	if loc != wantLoc {
		g.t.Fatalf("redirect to %q, want %q", loc, wantLoc)
	}
	page := g.get(origin + loc)
	expectStatus(g.t, page, http.StatusOK, `name="email"`)
	csrf = formValue(g.t, page.body, "csrf")
	rd := formValue(g.t, page.body, "rd")
	loc = expectRedirect(g.t, g.post(origin+base+"send", url.Values{"csrf": {csrf}, "rd": {rd}, "email": {email}}), http.StatusSeeOther)
	if loc != base+"verify" {
		g.t.Fatalf("after send: redirect to %q, want %q", loc, base+"verify")
	}
	page = g.get(origin + loc)
	expectStatus(g.t, page, http.StatusOK, `name="code"`)
	return formValue(g.t, page.body, "csrf")
}

// expectNoCode walks g to the code page for email, as anyone may, and
// checks that no mail reached the address; why says who it is.
func (e *env) expectNoCode(g *guest, origin, base, protected, email, why string) {
	e.t.Helper()
	n := e.smtp.Count(email)
	g.requestCode(origin, base, protected, email)
	waitMailIdle(e.t)
	if e.smtp.Count(email) != n {
		e.t.Errorf("%s got a code", why)
	}
}

// signIn does the whole flow and returns where the guest landed.
func (e *env) signIn(g *guest, origin, base, protected, email string) string {
	e.t.Helper()
	return e.signInAnswer(g, origin, base, protected, email).Header.Get("Location")
}

// signInAnswer is signIn's last answer, the redirect that sets the session
// cookie, for tests of its headers.
func (e *env) signInAnswer(g *guest, origin, base, protected, email string) reply {
	e.t.Helper()
	n := e.smtp.Count(email)
	csrf := g.requestCode(origin, base, protected, email)
	code := codeIn(e.t, e.smtp.Wait(e.t, email, n+1, 10*time.Second).Text)
	r := g.post(origin+base+"verify", url.Values{"csrf": {csrf}, "code": {code}})
	expectRedirect(e.t, r, http.StatusSeeOther)
	return r
}

// backendView GETs a protected URL that must reach the backend.
func (g *guest) backendView(u string, headers ...string) backendSeen {
	g.t.Helper()
	r := g.get(u, headers...)
	expectStatus(g.t, r, http.StatusOK)
	var seen backendSeen
	if err := json.Unmarshal([]byte(r.body), &seen); err != nil {
		g.t.Fatalf("GET %s: not the backend's answer: %v\n%s", u, err, r.body)
	}
	return seen
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

// signOut signs the guest out through the sign-out page's form.
func (g *guest) signOut(origin, base string) reply {
	g.t.Helper()
	page := g.get(origin + base + "signout")
	expectStatus(g.t, page, http.StatusOK)
	return g.post(origin+base+"signout", url.Values{"csrf": {formValue(g.t, page.body, "csrf")}})
}

// startSlowSink starts an SMTP server that takes a second per message.
func startSlowSink(t *testing.T) *smtpsink.Sink {
	return smtpsink.StartWith(t, smtpsink.Options{Delay: time.Second})
}

// decodeHeader decodes RFC 2047 words in a header value.
func decodeHeader(v string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// verifyBurst posts code 20 times at once, each time with the same pending
// cookie (as a guest with many tabs, or an attacker with a copy, would), to
// the nodes given in turn, and counts the sessions issued.
func verifyBurst(t *testing.T, nodes []string, csrf, code string, pending *http.Cookie) (sessions int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	for i := 0; i < 20; i++ {
		node := nodes[i%len(nodes)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, node+hostBase+"verify", strings.NewReader(url.Values{"csrf": {csrf}, "code": {code}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", pending.Name+"="+pending.Value)
			resp, err := newGuest(t).client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			for _, c := range resp.Cookies() {
				if c.Name == "email_otp_session" && c.MaxAge > 0 {
					mu.Lock()
					sessions++
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return sessions
}

// mailEventRE reads one sample of the delivery queue's event counter.
var mailEventRE = regexp.MustCompile(`(?m)^caddy_email_otp_mail_events_total\{event="(queued|delivered|failed)"[^}]*\} ([0-9.e+]+)$`)

// waitMailIdle waits until every message any delivery queue accepted has
// been delivered or given up (Caddy's metrics: queued = delivered + failed),
// so a test can then check what was, and was not, sent. It waits on a
// signal, with a deadline, instead of sleeping and hoping.
func waitMailIdle(t *testing.T) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://localhost:2999/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var queued, done float64
		for _, m := range mailEventRE.FindAllStringSubmatch(string(b), -1) {
			var v float64
			fmt.Sscan(m[2], &v)
			if m[1] == "queued" {
				queued += v
			} else {
				done += v
			}
		}
		if queued == done {
			return
		}
		last = fmt.Sprintf("queued %v, delivered or failed %v", queued, done)
	}
	t.Fatalf("the delivery queues did not go idle within 10s: %s", last)
}
