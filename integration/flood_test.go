package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// One IPv6 client holds a whole /64: per_ip counts it once, whichever of
// its addresses a send comes from.
func TestPerIPCountsAnIPv6Slash64Once(t *testing.T) {
	start(t, gatewayOptions{
		extra:  "limits {\n\t\t\tper_ip 2 1h\n\t\t}",
		global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict\n\t}",
	})
	for i := 1; i <= 2; i++ {
		if r, _, _ := sendFrom(t, fmt.Sprintf("b%d@contoso.com", i), "X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%d", i)); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("send %d: %d", i, r.StatusCode)
		}
	}
	r, _, _ := sendFrom(t, "b3@contoso.com", "X-Forwarded-For", "2001:db8:1:2:ffff::3")
	expectStatus(t, r, http.StatusTooManyRequests, "Too many codes requested")
	if r, _, _ := sendFrom(t, "b4@contoso.com", "X-Forwarded-For", "2001:db8:1:3::1"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("a client in another /64: %d", r.StatusCode)
	}
}

// A flood of sends spread over the path tenants fills the memory store;
// what the flood finds there stays: the code a guest is typing still signs
// them in and the address's send count still holds its next code back. The
// flood's extra sends are told to come back (429), never a 5xx.
func TestFloodOfSendsKeepsCodesAndCounters(t *testing.T) {
	e := start(t, gatewayOptions{extra: "store memory {\n\t\t\tmax_challenges 40\n\t\t}\n\t\tlimits {\n\t\t\tper_address 1 1h\n\t\t}"})
	victim := newGuest(t)
	csrf := victim.requestCode(contoso, hostBase, "/report", "vic@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "vic@contoso.com", 1, 10*time.Second).Text)

	statuses := map[int]int{}
	for i := range 100 {
		base := pathSite + "/t/" + []string{"acme", "globex", "evil"}[i%3] + hostBase
		g := newGuest(t)
		page := g.get(base + "signin")
		expectStatus(t, page, http.StatusOK)
		r := g.post(base+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {fmt.Sprintf("flood%d@unlisted.example", i)}})
		statuses[r.StatusCode]++
		if r.StatusCode == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
			t.Errorf("a refused send without Retry-After")
		}
	}
	if statuses[http.StatusSeeOther]+statuses[http.StatusTooManyRequests] != 100 || statuses[http.StatusTooManyRequests] == 0 {
		t.Fatalf("the flood's answers: %v, want only 303 and 429, some 429 once the store is full", statuses)
	}
	// The per-address count survived: a second code for the victim is held.
	newGuest(t).requestCodeHeld(contoso, "vic@contoso.com")
	waitMailIdle(t)
	if n := e.smtp.Count("vic@contoso.com"); n != 1 {
		t.Errorf("%d codes for the victim after the flood, per_address allows 1", n)
	}
	loc := expectRedirect(t, victim.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if loc != "/report" {
		t.Errorf("the victim's code after the flood led to %q, want /report", loc)
	}
}
