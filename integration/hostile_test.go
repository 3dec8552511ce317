package integration

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// hostileCase is one attack on the running gateway: the class of the
// security requirements it belongs to (the rows of SECURITY-TESTS.md), the
// advisory or clause behind it, and what must (not) happen.
type hostileCase struct {
	class, name, source string
	run                 func(t *testing.T, h *hostileEnv)
}

// hostileEnv is a running gateway with signed-in guests to borrow cookies from.
type hostileEnv struct {
	*env
	contosoCookie, acmeCookie *http.Cookie
}

func TestHostileInput(t *testing.T) {
	e := start(t, gatewayOptions{})
	h := &hostileEnv{env: e}
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "victim@contoso.com")
	h.contosoCookie = g.cookie(contoso+"/", "email_otp_session")
	e.signIn(g, pathSite, acmeBase, "/t/acme/", "victim@contoso.com")
	h.acmeCookie = g.cookie(pathSite+"/t/acme/", "email_otp_session")

	var cases []hostileCase
	cases = append(cases, addressCases()...)
	cases = append(cases, redirectCases()...)
	cases = append(cases, tenantCases()...)
	cases = append(cases, headerCases()...)
	cases = append(cases, cookieCases()...)
	cases = append(cases, formCases()...)
	cases = append(cases, codeCases()...)
	cases = append(cases, pageHeaderCases()...)
	if len(cases) < 80 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.class+"/"+c.name, func(t *testing.T) {
			t.Logf("source: %s", c.source)
			c.run(t, h)
		})
	}
}

// sendAs posts the send form with email from a fresh browser.
func sendAs(t *testing.T, email string) reply {
	g := newGuest(t)
	page := g.get(contoso + hostBase + "signin")
	return g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {email}})
}

func addressCases() []hostileCase {
	bad := map[string]string{
		"display name":        "Mallory <mallory@contoso.com>",
		"comment":             "mallory@contoso.com (admin)",
		"quoted local part":   `"mallory evil"@contoso.com`,
		"domain literal":      "mallory@[127.0.0.1]",
		"IP domain":           "mallory@127.0.0.1",
		"single-label domain": "mallory@contoso",
		"two @":               "mallory@evil.example@contoso.com",
		"comma list":          "mallory@contoso.com,victim@contoso.com",
		"semicolon list":      "mallory@contoso.com;victim@contoso.com",
		"CRLF header":         "mallory@contoso.com\r\nBcc: victim@contoso.com",
		"LF header":           "mallory@contoso.com\nBcc: victim@contoso.com",
		"NUL":                 "mallory\x00@contoso.com",
		"too long":            strings.Repeat("a", 60) + "@" + strings.Repeat("b", 190) + ".contoso.com",
		"local part over 64":  strings.Repeat("a", 65) + "@contoso.com",
		"Cyrillic lookalike":  "аdmin@contoso.com",
		"space inside":        "mal lory@contoso.com",
		"leading dot":         ".mallory@contoso.com",
		"double dot":          "mal..lory@contoso.com",
		"empty":               "",
		"line separator":      "mallory\u2028@contoso.com",
		"trailing dot domain": "mallory@contoso.com.",
	}
	var cases []hostileCase
	for name, addr := range bad {
		addr := addr
		cases = append(cases, hostileCase{"address", name, "requirements, Addresses; OWASP Email Validation; ASVS 5.1.3", func(t *testing.T, h *hostileEnv) {
			r := sendAs(t, addr)
			expectStatus(t, r, http.StatusUnprocessableEntity, `id="email-error"`)
			if strings.Contains(r.body, "\r\nBcc") {
				t.Error("the page echoes a header line")
			}
		}})
	}
	cases = append(cases, hostileCase{"address", "repeated email parameter", "requirements, Addresses: one email value, refused not fanned out", func(t *testing.T, h *hostileEnv) {
		g := newGuest(t)
		page := g.get(contoso + hostBase + "signin")
		r := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"a@contoso.com", "victim@contoso.com"}})
		expectStatus(t, r, http.StatusBadRequest)
	}}, hostileCase{"address", "suffix match evilcontoso.com", "requirements: domain rules never match a suffix", func(t *testing.T, h *hostileEnv) {
		before := h.smtp.Count("x@evilcontoso.com")
		expectStatus(t, sendAs(t, "x@evilcontoso.com"), http.StatusSeeOther)
		waitMailIdle(t)
		if h.smtp.Count("x@evilcontoso.com") != before {
			t.Error("a code went to a suffix look-alike domain")
		}
	}}, hostileCase{"address", "contoso.com.evil.example", "requirements: domain rules never match a suffix", func(t *testing.T, h *hostileEnv) {
		expectStatus(t, sendAs(t, "x@contoso.com.evil.example"), http.StatusSeeOther)
		waitMailIdle(t)
		if h.smtp.Count("x@contoso.com.evil.example") != 0 {
			t.Error("a code went to contoso.com.evil.example")
		}
	}})
	return cases
}

func redirectCases() []hostileCase {
	rds := []string{
		"//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example/",
		"http:evil.example", "javascript:alert(1)", "data:text/html,x", "/%2F%2Fevil.example", "/%5Cevil.example",
		"/%09/evil.example", "/\t/evil.example", "/@evil.example/..", "/a/../../evil", "/.email-otp/signout",
		"evil.example", "/x\r\nLocation: https://evil.example", "/%E2%80%A8/evil.example", "/%C2%85/evil.example",
	}
	var cases []hostileCase
	for _, rd := range rds {
		rd := rd
		cases = append(cases, hostileCase{"redirect", fmt.Sprintf("%q", rd), "OWASP Unvalidated Redirects; oauth2-proxy CVE-2020-5233, CVE-2021-21291", func(t *testing.T, h *hostileEnv) {
			page := newGuest(t).get(contoso + hostBase + "signin?rd=" + url.QueryEscape(rd))
			expectStatus(t, page, http.StatusOK)
			if got := formValue(t, page.body, "rd"); got != "/" {
				t.Errorf("rd %q survived as %q", rd, got)
			}
		}})
	}
	cases = append(cases, hostileCase{"redirect", "into another path tenant", "requirements, Redirects: rd stays in the tenant", func(t *testing.T, h *hostileEnv) {
		page := newGuest(t).get(pathSite + acmeBase + "signin?rd=" + url.QueryEscape("/t/globex/secret"))
		if got := formValue(t, page.body, "rd"); got != "/t/acme/" {
			t.Errorf("rd points at %q", got)
		}
	}})
	return cases
}

func tenantCases() []hostileCase {
	paths := map[string]int{
		"/t/..%2f/x": 400, "/t/%2e%2e/x": 400, "/t/a%2fb/x": 400, "/t/acme//x": 400, "/t/acme/../globex/x": 400,
		"/t/a%5cb/x": 400, "/t/a%00/x": 400, "/t/.git/config": 400, "/t/" + strings.Repeat("a", 80) + "/": 400,
		"/t/": 404, "/": 404,
	}
	var cases []hostileCase
	for p, want := range paths {
		p, want := p, want
		cases = append(cases, hostileCase{"tenant", p, "requirements, Tenants: traversal and encoded separators refused", func(t *testing.T, h *hostileEnv) {
			r := newGuest(t).get(pathSite+p, "Cookie", h.acmeCookie.Name+"="+h.acmeCookie.Value)
			if r.StatusCode != want {
				t.Errorf("GET %s: %d, want %d", p, r.StatusCode, want)
			}
		}})
	}
	cases = append(cases, hostileCase{"tenant", "X-Forwarded-Host ignored", "requirements: forwarded host never trusted; Authelia/oauth2-proxy host header advisories", func(t *testing.T, h *hostileEnv) {
		r := newGuest(t).get(contoso+"/x", "Accept", "application/json", "X-Forwarded-Host", "fabrikam.localhost", "X-Forwarded-Proto", "https")
		if wa := r.Header.Get("WWW-Authenticate"); !strings.Contains(wa, `realm="contoso.localhost"`) {
			t.Errorf("tenant taken from a forwarded header: %q", wa)
		}
		// contoso's cookie with a forwarded host of fabrikam still only opens contoso.
		r = newGuest(t).get(fabrikam+"/x", "Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value, "X-Forwarded-Host", "contoso.localhost")
		expectRedirect(t, r, http.StatusFound)
	}}, hostileCase{"tenant", "Host with trailing dot and port", "requirements: host lower-cased, port and trailing dot stripped", func(t *testing.T, h *hostileEnv) {
		req, _ := http.NewRequest(http.MethodGet, contoso+"/x", nil)
		req.Host = "CONTOSO.localhost.:9080"
		req.Header.Set("Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value)
		req.Header.Set("Accept", "text/html")
		resp, err := newGuest(t).client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d", resp.StatusCode) // 404 if Caddy's own host matcher refuses the name
		}
	}})
	return cases
}

func headerCases() []hostileCase {
	spoofs := [][]string{
		{"X-Auth-Email", "admin@contoso.com"}, {"x-auth-email", "admin@contoso.com"}, {"X_Auth_Email", "admin@contoso.com"},
		{"X-AUTH-EMAIL", "admin@contoso.com"}, {"X-Auth-Tenant", "fabrikam.localhost"}, {"X-Auth-Method", "password"},
		{"X-Auth-Guest-Status", "invited"}, {"X-Auth-Session-Expires", "2099-01-01T00:00:00Z"},
	}
	var cases []hostileCase
	for _, sp := range spoofs {
		sp := sp
		cases = append(cases, hostileCase{"identity header", sp[0], "Caddy forward_auth header-copy advisory (GHSA-7r4p-vjf4-gxv4); requirements, Identity headers", func(t *testing.T, h *hostileEnv) {
			// Unauthenticated: the spoof does not get through at all.
			expectRedirect(t, newGuest(t).get(contoso+"/x", sp[0], sp[1]), http.StatusFound)
			// Authenticated: exactly the gateway's value reaches the backend.
			seen := newGuest(t).backendView(contoso+"/x", "Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value, sp[0], sp[1], sp[0], sp[1])
			for name, vals := range seen.Headers {
				if normalize(name) == normalize(sp[0]) && (len(vals) != 1 || vals[0] == sp[1]) {
					t.Errorf("backend saw %s: %v", name, vals)
				}
			}
			if first(seen.Headers["X-Auth-Email"]) != "victim@contoso.com" {
				t.Errorf("X-Auth-Email = %v", seen.Headers["X-Auth-Email"])
			}
		}})
	}
	return cases
}

func normalize(h string) string { return strings.ReplaceAll(strings.ToLower(h), "_", "-") }

func cookieCases() []hostileCase {
	type mut struct {
		name  string
		value func(h *hostileEnv) string
	}
	muts := []mut{
		{"flipped byte", func(h *hostileEnv) string { b := []byte(h.contosoCookie.Value); b[len(b)/3] ^= 2; return string(b) }},
		{"truncated", func(h *hostileEnv) string { return h.contosoCookie.Value[:len(h.contosoCookie.Value)-5] }},
		{"garbage", func(*hostileEnv) string { return "eyJhbGciOiJub25lIn0.e30." }},
		{"oversized", func(*hostileEnv) string { return strings.Repeat("A", 6000) }},
		{"other tenant's value", func(h *hostileEnv) string { return h.acmeCookie.Value }},
		{"empty", func(*hostileEnv) string { return "" }},
	}
	var cases []hostileCase
	for _, m := range muts {
		m := m
		cases = append(cases, hostileCase{"cookie", m.name, "requirements, Sessions: tampered, truncated, garbage or oversized → no session, never 200 or 500", func(t *testing.T, h *hostileEnv) {
			r := newGuest(t).get(contoso+"/x", "Cookie", "email_otp_session="+m.value(h))
			expectRedirect(t, r, http.StatusFound)
		}})
	}
	cases = append(cases, hostileCase{"cookie", "bad copy before a good one", "requirements: duplicate cookies handled, never trust the first blindly", func(t *testing.T, h *hostileEnv) {
		newGuest(t).backendView(contoso+"/x", "Cookie", "email_otp_session=garbage; email_otp_session="+h.contosoCookie.Value)
	}}, hostileCase{"cookie", "pending cookie value used as a session", "requirements: pre-auth cookies are never promoted", func(t *testing.T, h *hostileEnv) {
		g := newGuest(t)
		g.get(contoso + hostBase + "signin")
		p := g.cookie(contoso+hostBase, "email_otp_pending")
		expectRedirect(t, newGuest(t).get(contoso+"/x", "Cookie", "email_otp_session="+p.Value), http.StatusFound)
	}})
	return cases
}

func formCases() []hostileCase {
	var cases []hostileCase
	for _, ep := range []string{"send", "verify", "signout", "consent", "notme"} {
		ep := ep
		cases = append(cases, hostileCase{"csrf", "GET " + ep + " changes nothing", "requirements, Forms: GET never verifies a code or signs out", func(t *testing.T, h *hostileEnv) {
			r := newGuest(t).get(contoso+hostBase+ep+"?email=x@contoso.com&code=12345678", "Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value)
			if r.StatusCode == http.StatusOK && ep != "notme" && ep != "verify" && ep != "signout" && ep != "consent" {
				t.Errorf("GET %s: 200", ep)
			}
			newGuest(t).backendView(contoso+"/x", "Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value)
		}})
	}
	posts := map[string]func(t *testing.T) (*guest, url.Values, []string){
		"missing token": func(t *testing.T) (*guest, url.Values, []string) {
			g := newGuest(t)
			g.get(contoso + hostBase + "signin")
			return g, url.Values{"email": {"a@contoso.com"}}, nil
		},
		"forged token": func(t *testing.T) (*guest, url.Values, []string) {
			g := newGuest(t)
			g.get(contoso + hostBase + "signin")
			return g, url.Values{"email": {"a@contoso.com"}, "csrf": {"AAAA"}}, nil
		},
		"another browser's token": func(t *testing.T) (*guest, url.Values, []string) {
			other := newGuest(t).get(contoso + hostBase + "signin")
			g := newGuest(t)
			g.get(contoso + hostBase + "signin")
			return g, url.Values{"email": {"a@contoso.com"}, "csrf": {formValue(t, other.body, "csrf")}}, nil
		},
		"cross-site origin": func(t *testing.T) (*guest, url.Values, []string) {
			g := newGuest(t)
			page := g.get(contoso + hostBase + "signin")
			return g, url.Values{"email": {"a@contoso.com"}, "csrf": {formValue(t, page.body, "csrf")}}, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
		},
		"no cookies at all": func(t *testing.T) (*guest, url.Values, []string) {
			page := newGuest(t).get(contoso + hostBase + "signin")
			return newGuest(t), url.Values{"email": {"a@contoso.com"}, "csrf": {formValue(t, page.body, "csrf")}}, nil
		},
	}
	for name, mk := range posts {
		name, mk := name, mk
		cases = append(cases, hostileCase{"csrf", name, "OWASP CSRF cheat sheet; caddy-security 2023 audit (no CSRF)", func(t *testing.T, h *hostileEnv) {
			g, form, headers := mk(t)
			r := g.post(contoso+hostBase+"send", form, headers...)
			// A form without its token is not understood (400); one with a
			// wrong token is refused (403). Either way nothing is sent.
			if r.StatusCode != http.StatusForbidden && !(name == "missing token" && r.StatusCode == http.StatusBadRequest) {
				t.Errorf("status %d", r.StatusCode)
			}
		}})
	}
	cases = append(cases, hostileCase{"csrf", "sign-out with a forged token", "requirements, Forms; sessions alive after logout (caddy-security audit)", func(t *testing.T, h *hostileEnv) {
		g := newGuest(t)
		expectStatus(t, g.post(contoso+hostBase+"signout", url.Values{"csrf": {"forged"}}, "Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value), http.StatusForbidden)
		newGuest(t).backendView(contoso+"/x", "Cookie", h.contosoCookie.Name+"="+h.contosoCookie.Value)
	}}, hostileCase{"form", "oversized body", "resource exhaustion: bounded form parsing", func(t *testing.T, h *hostileEnv) {
		g := newGuest(t)
		page := g.get(contoso + hostBase + "signin")
		r := g.post(contoso+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"a@contoso.com"}, "pad": {strings.Repeat("x", 100000)}})
		expectStatus(t, r, http.StatusBadRequest)
	}}, hostileCase{"form", "unknown endpoint", "clear answers: 404 page, not a crash", func(t *testing.T, h *hostileEnv) {
		expectStatus(t, newGuest(t).get(contoso+hostBase+"admin"), http.StatusNotFound)
	}}, hostileCase{"form", "PUT on send", "clear answers: 405 with Allow", func(t *testing.T, h *hostileEnv) {
		req, _ := http.NewRequest(http.MethodPut, contoso+hostBase+"send", nil)
		r := newGuest(t).do(req)
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
			t.Errorf("%d Allow=%q", r.StatusCode, r.Header.Get("Allow"))
		}
	}})
	return cases
}

func codeCases() []hostileCase {
	codes := map[string]string{
		"full-width digits":   "１２３４５６７８",
		"Arabic-Indic digits": "١٢٣٤٥٦٧٨",
		"too short":           "1234567",
		"too long":            "123456789",
		"letters":             "1234567a",
		"SQL":                 "' OR '1'='1",
		"NUL inside":          "1234\x005678",
		"superscript digits":  "¹²³⁴⁵⁶⁷⁸",
	}
	var cases []hostileCase
	for name, code := range codes {
		code := code
		cases = append(cases, hostileCase{"code", name, "requirements, Codes: only ASCII digits; NIST 800-63B", func(t *testing.T, h *hostileEnv) {
			g := newGuest(t)
			csrf := g.requestCode(contoso, hostBase, "/", "codes@contoso.com")
			r := g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}})
			expectStatus(t, r, http.StatusUnprocessableEntity, "8-digit code")
			for _, c := range r.Cookies() {
				if c.Name == "email_otp_session" {
					t.Error("a malformed code set a session")
				}
			}
		}})
	}
	return cases
}

func pageHeaderCases() []hostileCase {
	var cases []hostileCase
	for _, p := range []string{"signin", "signout", "nosuchpage", "notme?t=x"} {
		p := p
		cases = append(cases, hostileCase{"page headers", p, "requirements, Forms: frame-ancestors 'none', no-store; OWASP clickjacking", func(t *testing.T, h *hostileEnv) {
			r := newGuest(t).get(contoso + hostBase + p)
			for header, want := range map[string]string{
				"Content-Security-Policy": "frame-ancestors 'none'", "Cache-Control": "no-store",
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
			} {
				if !strings.Contains(r.Header.Get(header), want) {
					t.Errorf("%s: %s = %q", p, header, r.Header.Get(header))
				}
			}
		}})
	}
	return cases
}

// TestParallelGuessesThroughCaddy: 20 parallel wrong guesses are all counted,
// and 20 parallel right ones give one session.
func TestParallelGuessesThroughCaddy(t *testing.T) {
	e := start(t, gatewayOptions{extra: "max_attempts 30"})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "para@contoso.com")
	pending := g.cookie(contoso+hostBase, "email_otp_pending")
	code := codeIn(t, e.smtp.Wait(t, "para@contoso.com", 1, 10*time.Second).Text)
	verifyBurst(t, []string{contoso}, csrf, wrongCode(code), pending)
	expectStatus(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {wrongCode(code)}}), http.StatusUnprocessableEntity, "9 tries left")
	sessions := verifyBurst(t, []string{contoso}, csrf, code, pending)
	if sessions != 1 {
		t.Fatalf("20 parallel right guesses gave %d sessions", sessions)
	}
}
