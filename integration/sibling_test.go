package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// Sibling host tenants: contoso and fabrikam under docs.example.com, which
// the test's Chromium resolves to this machine. A page of one may set
// cookies for the parent domain, which the browser then sends to the other.
const (
	siblingOrigin  = "http://contoso.docs.example.com:9080"
	siblingAttack  = "http://fabrikam.docs.example.com:9080"
	siblingDomain  = "docs.example.com"
	siblingResolve = "MAP *.docs.example.com 127.0.0.1"
)

// tosser is fabrikam's page: whatever it is told to, it sets as cookies for
// the parent domain under the path given, as any page of a sibling host can.
type tosser struct {
	mu      sync.Mutex
	cookies []string // "name=value; Path=…"
}

func (ts *tosser) toss(name, value, path string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.cookies = append(ts.cookies, fmt.Sprintf("%s=%s; Domain=%s; Path=%s; Max-Age=3600", name, value, siblingDomain, path))
}

func (ts *tosser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><title>fabrikam</title><p id=done>nothing to see</p>")
}

// siblingSites is contoso's gateway (host tenants, the given limits) and
// fabrikam's page, served by the attacker's own backend.
func (e *env) siblingSites(limits string, attacker *httptest.Server) string {
	return globalOptions(e.storage) + fmt.Sprintf(`%s {
	email_otp {
		tenant host
		allow *@contoso.com
		%s
		%s
	}
	reverse_proxy %s
}
%s {
	reverse_proxy %s
}
`, siblingOrigin, limits, e.smtpMailer(0), strings.TrimPrefix(e.backend.URL, "http://"),
		siblingAttack, strings.TrimPrefix(attacker.URL, "http://"))
}

// visit opens url in the browser and waits for its body.
func visit(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	must(t, "opening "+url, chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady("body")))
}

// browserSends asks for a code for email on contoso's sign-in page and
// fails the test, with the page's words, unless the enter-code page follows.
func browserSends(t *testing.T, ctx context.Context, email string) {
	t.Helper()
	visit(t, ctx, siblingOrigin+hostBase+"signin?rd=%2Fdocs%2Fa.pdf")
	must(t, "asking for a code", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SetValue(chromedp.ID("email"), email),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitReady(`body`),
	))
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.WaitVisible(chromedp.ID("code"))); err != nil {
		t.Fatalf("after asking for a code: no enter-code page; the page says:\n%s", run(t, ctx, chromedp.Text(chromedp.CSS("body"))))
	}
}

// tossedCookies is what the browser holds for contoso's endpoints from
// the parent domain: the test only means something if the browser kept them.
func tossedCookies(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var got network.GetCookiesResult
	must(t, "reading the browser's cookies", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var err error
		got, err = cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{siblingOrigin + "/.email-otp/send"}})
		return err
	})))
	var names []string
	for _, c := range got.Cookies {
		if c.Domain == "."+siblingDomain {
			names = append(names, c.Name+" "+c.Path)
		}
	}
	return names
}

// A page on a sibling host tosses genuine contoso cookies (a pending value
// anyone gets from the sign-in page, the device marker of the attacker's
// own sign-in) for the parent domain under the paths of contoso's forms,
// which the browser sends before contoso's own. Contoso's guest still signs
// in, and their browser keeps its own limits.
func TestSiblingHostCannotSpoilSignIn(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	attacker := &tosser{}
	attackSrv := httptest.NewServer(attacker)
	t.Cleanup(attackSrv.Close)
	e.load(e.siblingSites(`limits {
			per_address 3 1h
			per_ip 100000 1h
			per_tenant 100000 1h
			resend_cooldown off
		}`, attackSrv))

	// The attacker's genuine values: a pending cookie from the sign-in page,
	// and the device marker of signing in with their own address.
	eve := newGuest(t)
	e.signIn(eve, siblingOrigin, hostBase, "/x", "eve@contoso.com")
	for _, name := range []string{"email_otp_pending", "email_otp_device"} {
		c := eve.cookie(siblingOrigin+hostBase, name)
		if c == nil {
			t.Fatalf("the attacker got no %s", name)
		}
		for _, path := range []string{"/.email-otp/send", "/.email-otp/verify"} {
			attacker.toss(name, c.Value, path)
		}
	}

	ctx := newBrowser(t, chromedp.Flag("host-resolver-rules", siblingResolve))
	visit(t, ctx, siblingAttack+"/")
	if got := tossedCookies(t, ctx); len(got) != 2 {
		t.Fatalf("the browser did not keep the sibling's cookies: %q", got)
	}

	// Alice signs in: the send and the code are hers, whatever the sibling set.
	browserSends(t, ctx, "alice@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "alice@contoso.com", 1, 10*time.Second).Text)
	must(t, "entering the code", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("code"), code),
		chromedp.Click(chromedp.CSS(`form[action$="verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS("pre")),
	))
	if body := run(t, ctx, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(body, `"X-Auth-Email":["alice@contoso.com"]`) {
		t.Fatalf("the backend did not see alice; page:\n%s", body)
	}

	// Strangers use up the strangers' quota for alice's address (her own
	// first send counted there too)...
	for i := 0; i < 2; i++ {
		newGuest(t).requestCode(siblingOrigin, hostBase, "/x", "alice@contoso.com")
	}
	waitMailIdle(t)
	if n := e.smtp.Count("alice@contoso.com"); n != 3 {
		t.Fatalf("alice has %d mails after the strangers' sends, want 3", n)
	}
	if r := newGuest(t).requestCode(siblingOrigin, hostBase, "/x", "alice@contoso.com"); r == "" {
		t.Fatal("no verify page for a held send")
	}
	waitMailIdle(t)
	if n := e.smtp.Count("alice@contoso.com"); n != 3 {
		t.Fatalf("the strangers' quota did not hold: %d mails", n)
	}
	// ... and alice's own browser, which she signed in with, still gets hers:
	// the sibling's marker does not hide her own.
	browserSends(t, ctx, "alice@contoso.com")
	e.smtp.Wait(t, "alice@contoso.com", 4, 10*time.Second)
}

// evilPage is a page of the path tenant evil that tries to read acme's
// …/session: in a frame without a Referer (closed: the answer refuses every
// frame), and by fetch with a referrer inside acme (open: one origin is one
// principal to the browser; docs/threat-model.md says so).
const evilPage = `<!doctype html><title>evil</title><body><script>
const f = document.createElement("iframe");
f.referrerPolicy = "no-referrer";
f.src = "/t/acme/.email-otp/session";
f.onload = () => {
	let text;
	try { text = f.contentDocument.body.innerText; } catch (e) { text = "blocked " + e.name; }
	window.framed = text || "empty";
};
document.body.appendChild(f);
fetch("/t/acme/.email-otp/session", {referrer: "/t/acme/x"}).then(r => r.text()).then(t => { window.fetched = t; });
</script></body>`

// Another path tenant's page can't read a tenant's …/session in a frame.
func TestPathTenantPageCannotFrameAnothersSession(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(globalOptions(e.storage) + fmt.Sprintf(`http://localhost:9080 {
	handle /t/evil/page {
		header Content-Type "text/html; charset=utf-8"
		respond %s
	}
	handle {
		email_otp {
			tenant path /t/
			tenants acme evil
			allow *@contoso.com
			%s
			%s
		}
		reverse_proxy %s
	}
}
`, "`"+evilPage+"`", testLimits, e.smtpMailer(0), strings.TrimPrefix(e.backend.URL, "http://")))

	ctx := newBrowser(t)
	must(t, "signing in to acme", chromedp.Do(ctx,
		chromedp.Navigate(pathSite+"/t/acme/docs/a"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SetValue(chromedp.ID("email"), "victim@contoso.com"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("code")),
	))
	code := codeIn(t, e.smtp.Wait(t, "victim@contoso.com", 1, 10*time.Second).Text)
	must(t, "entering the code", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("code"), code),
		chromedp.Click(chromedp.CSS(`form[action$="verify"] button`)),
		chromedp.WaitVisible(chromedp.CSS("pre")),
	))
	must(t, "opening evil's page", chromedp.Do(ctx,
		chromedp.Navigate(pathSite+"/t/evil/page"),
		void(chromedp.Poll[any](`window.framed !== undefined && window.fetched !== undefined`, chromedp.WithPollingTimeout(10*time.Second))),
	))
	got := run(t, ctx, chromedp.Evaluate[map[string]any](`({framed: window.framed, fetched: window.fetched})`))
	if framed, _ := got["framed"].(string); strings.Contains(framed, "victim@contoso.com") {
		t.Errorf("evil's page read acme's session in a frame: %q", framed)
	}
	// What stays open, as the threat model says: a same-origin script that
	// sets its fetch's referrer inside acme.
	if fetched, _ := got["fetched"].(string); !strings.Contains(fetched, "victim@contoso.com") {
		t.Errorf("the documented same-origin fetch no longer reads the session (update docs/threat-model.md): %q", fetched)
	}
}
