package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// sendFrom asks for a code for email in a fresh browser and returns the
// send answer and the enter-code page that follows.
func sendFrom(t *testing.T, email string, headers ...string) (reply, reply, *guest) {
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	r := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {email}}, headers...)
	if r.StatusCode != http.StatusSeeOther {
		return r, reply{}, g
	}
	return r, g.get(contoso + hostBase + "verify"), g
}

var clockRE = regexp.MustCompile(`\d\d:\d\d(:\d\d)? [A-Z]+`)

func TestResendCooldownHoldsQuietlyForEveryAddress(t *testing.T) {
	e := start(t, gatewayOptions{extra: "limits {\n\t\t\tresend_cooldown 1m\n\t\t}"})
	type seen struct {
		status          int
		location, names string
		page            string
	}
	look := func(email string) seen {
		r, v, _ := sendFrom(t, email)
		var names []string
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		page := strings.ReplaceAll(clockRE.ReplaceAllString(scrub(v.body), "T"), email, "EMAIL")
		return seen{r.StatusCode, r.Header.Get("Location"), strings.Join(names, ","), page}
	}
	look("ivan@contoso.com")
	look("ivan@unlisted.example")
	allowed, denied := look("ivan@contoso.com"), look("ivan@unlisted.example")
	if allowed != denied {
		t.Errorf("held sends differ:\nallowed %+v\ndenied  %+v", allowed, denied)
	}
	if allowed.status != http.StatusSeeOther || !strings.Contains(allowed.page, "you can ask for a new code in") {
		t.Errorf("a held send: %+v", allowed)
	}
	waitMailIdle(t)
	if n := e.smtp.Count("ivan@contoso.com"); n != 1 {
		t.Errorf("%d codes within the cooldown, want 1", n)
	}
}

func TestPerIPLimitAnswers429(t *testing.T) {
	start(t, gatewayOptions{
		extra:  "limits {\n\t\t\tper_ip 2 1h\n\t\t}",
		global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}",
	})
	for i, email := range []string{"a1@contoso.com", "a2@contoso.com"} {
		if r, _, _ := sendFrom(t, email, "X-Forwarded-For", "198.51.100.7"); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("send %d: %d", i+1, r.StatusCode)
		}
	}
	r, _, _ := sendFrom(t, "a3@contoso.com", "X-Forwarded-For", "198.51.100.7")
	expectStatus(t, r, http.StatusTooManyRequests, "Too many codes requested", "try again in")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	// Another client (through the trusted proxy) is not affected.
	if r, _, _ := sendFrom(t, "a3@contoso.com", "X-Forwarded-For", "198.51.100.8"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("another client: %d", r.StatusCode)
	}
}

func TestNotMeLinkCancelsTheCodeAndStopsCodes(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "jane@contoso.com")
	mail := e.smtp.Wait(t, "jane@contoso.com", 1, 10*time.Second)
	code := codeIn(t, mail.Text)
	link := notMeRE.FindString(mail.Text)
	if link == "" || !strings.Contains(mail.HTML, "notme?t=") {
		t.Fatalf("no cancel link in the email:\n%s", mail.Text)
	}
	// Opening the link (a mail scanner might) changes nothing.
	other := newGuest(t)
	page := other.get(link)
	expectStatus(t, page, http.StatusOK, "jane@contoso.com", "Cancel the code")
	token := formValue(t, page.body, "t")
	expectStatus(t, other.post(contoso+hostBase+"notme", url.Values{"csrf": {"forged"}, "t": {token}}), http.StatusForbidden)
	expectStatus(t, other.post(contoso+hostBase+"notme", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "t": {token}}), http.StatusOK, "The code was cancelled")
	loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if !strings.Contains(loc, "reason=expired") {
		t.Errorf("the cancelled code: %q", loc)
	}
	g.requestCodeHeld(contoso, "jane@contoso.com")
	waitMailIdle(t)
	if n := e.smtp.Count("jane@contoso.com"); n != 1 {
		t.Errorf("%d codes after 'this wasn't me', want the first only", n)
	}
	expectStatus(t, newGuest(t).get(contoso+hostBase+"notme?t=garbage"), http.StatusBadRequest, "does not work")
}

// requestCodeHeld asks for a code and expects it held by a limit.
func (g *guest) requestCodeHeld(origin, email string) {
	g.t.Helper()
	page := g.get(origin + hostBase + "signin")
	expectRedirect(g.t, g.post(origin+hostBase+"send", url.Values{"csrf": {formValue(g.t, page.body, "csrf")}, "email": {email}}), http.StatusSeeOther)
	expectStatus(g.t, g.get(origin+hostBase+"verify"), http.StatusOK, "you can ask for a new code in")
}

// TestSendTimingDoesNotTellAllowedFromDenied: the mail is queued, so the send
// step takes the same time whether or not the address may sign in. Medians of
// many interleaved samples must agree within noise.
func TestSendTimingDoesNotTellAllowedFromDenied(t *testing.T) {
	start(t, gatewayOptions{})
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	csrf := formValue(t, page.body, "csrf")
	const samples, warmUp = 500, 30
	timeSend := func(email string) time.Duration {
		// A pause first, so the mail a real send hands to its worker is off
		// the CPU before the next answer is timed: what is measured is the
		// answer to one request, as a prober sees it.
		time.Sleep(6 * time.Millisecond)
		t0 := time.Now()
		r := g.post(contoso+hostBase+"send", url.Values{"csrf": {csrf}, "email": {email}})
		d := time.Since(t0)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("send %s: %d", email, r.StatusCode)
		}
		return d
	}
	// Interleaved, each going first every other round, so the machine's
	// noise falls on both alike; the first rounds warm caches and
	// connections and are not counted.
	var allowed, denied []time.Duration
	for i := 0; i < samples+warmUp; i++ {
		var a, d time.Duration
		if i%2 == 0 {
			a, d = timeSend(fmt.Sprintf("t%d@contoso.com", i)), timeSend(fmt.Sprintf("t%d@unlisted.example", i))
		} else {
			d, a = timeSend(fmt.Sprintf("t%d@unlisted.example", i)), timeSend(fmt.Sprintf("t%d@contoso.com", i))
		}
		if i >= warmUp {
			allowed, denied = append(allowed, a), append(denied, d)
		}
	}
	ma, md := median(allowed), median(denied)
	diff := ma - md
	if diff < 0 {
		diff = -diff
	}
	const tolerance = 50 * time.Microsecond
	t.Logf("median send through Caddy: allowed %v, denied %v (difference %v, tolerance %v)", ma, md, diff, tolerance)
	if diff > tolerance {
		t.Errorf("allowed and denied sends differ by %v in median (allowed %v, denied %v)", diff, ma, md)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestRevealDeniedSaysSoPlainly(t *testing.T) {
	e := start(t, gatewayOptions{extra: "reveal_denied"})
	r, _, _ := sendFrom(t, "lee@unlisted.example")
	expectStatus(t, r, http.StatusForbidden, "lee@unlisted.example may not sign in", `id="email-error"`)
	if r2, _, _ := sendFrom(t, "lee@contoso.com"); r2.StatusCode != http.StatusSeeOther {
		t.Errorf("an allowed address: %d", r2.StatusCode)
	}
	e.smtp.Wait(t, "lee@contoso.com", 1, 10*time.Second)
}
