package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// BenchmarkConsoleList100k: pages of the console's guest list (signed in
// as an admin) and of the admin API's, through a Caddy process, for one
// tenant of 100 000 guests kept in Redis (guest_directory). Each query is
// asked b.N times; p95-ms is the 95th percentile of the answers.
func BenchmarkConsoleList100k(b *testing.B) {
	rs := redisserver.Start(b)
	const tenant = "contoso.localhost"
	fillDirectory(b, rs.URL(0), tenant, 100_000)
	sink := smtpsink.Start(b)
	site := "http://contoso.localhost:9380"
	startNode(b, fmt.Sprintf(`{
	admin localhost:3029
	http_port 9380
	https_port 9643
	storage file_system %s
}
%s {
	email_otp {
		allow *@contoso.com
		store redis %s {
			guest_directory
		}
		console /admin
		admins %s
		mailer smtp {
			host 127.0.0.1
			port %d
			tls none
			from docs@example.com
		}
	}
	respond "a document"
}
`, b.TempDir(), site, rs.URL(0), bossAdmin, sink.Port), "127.0.0.1:9380")
	admin := signedInAdmin(b, sink, site)

	for _, q := range []struct{ name, console, api string }{
		{"console/search-one-address", "?q=guest054321", "?q=guest054321"},
		{"console/first-page", "", ""},
		{"console/domain-latest-sign-ins", "?q=%40fabrikam.com&sort=last_sign_in", "?q=%40fabrikam.com&sort=last_sign_in"},
	} {
		for _, where := range []struct{ name, url string }{
			{"console", site + "/admin/t/" + tenant + "/" + q.console},
			{"admin-api", "http://localhost:3029/email-otp/guests/" + tenant + q.api},
		} {
			b.Run(strings.Replace(q.name, "console", where.name, 1), func(b *testing.B) {
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					resp, err := admin.Get(where.url)
					if err != nil {
						b.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					took = append(took, time.Since(start))
					if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "guest0") {
						b.Fatalf("%s: %d\n%s", where.url, resp.StatusCode, body)
					}
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
			})
		}
	}
}

// signedInAdmin is a client holding the console session of the gateway-wide
// admin, signed in by code through the site's console.
func signedInAdmin(b *testing.B, sink *smtpsink.Sink, site string) *http.Client {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: asBrowser{caddytest.CreateTestingTransport()}}
	page := func(resp *http.Response, err error) string {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	signin := page(c.Get(site + "/admin/")) // followed to the sign-in page
	page(c.PostForm(site+consoleBase+"send", url.Values{"csrf": {formValue(b, signin, "csrf")}, "rd": {"/admin/"}, "email": {bossAdmin}}))
	verify := page(c.Get(site + consoleBase + "verify"))
	code := codeIn(b, sink.Wait(b, bossAdmin, 1, 10*time.Second).Text)
	if home := page(c.PostForm(site+consoleBase+"verify", url.Values{"csrf": {formValue(b, verify, "csrf")}, "code": {code}})); !strings.Contains(home, "console-bar") {
		b.Fatalf("the admin's sign-in did not reach the console:\n%s", home)
	}
	return c
}

// asBrowser asks for pages as a browser does (the gateway answers other
// clients 401 instead of its sign-in page), on this machine for every
// *.localhost.
type asBrowser struct{ http.RoundTripper }

func (b asBrowser) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Accept") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	return b.RoundTripper.RoundTrip(r)
}
