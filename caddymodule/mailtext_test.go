package emailotp

import (
	"strings"
	"testing"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

func TestParseBaseURL(t *testing.T) {
	good := map[string]string{
		"https://docs.example.com":       "https://docs.example.com",
		"https://docs.example.com/":      "https://docs.example.com",
		"http://localhost:8080":          "http://localhost:8080",
		"https://DOCS.example.com:8443/": "https://DOCS.example.com:8443",
	}
	for in, want := range good {
		u, err := parseBaseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("parseBaseURL(%q) = %v, %v; want %q", in, u, err, want)
		}
	}
	for _, bad := range []string{"docs.example.com", "ftp://docs.example.com", "https://", "https://docs.example.com/t/acme/",
		"https://u:p@docs.example.com", "https://docs.example.com?x=1", "https://docs.example.com#x", "https://a b.example.com"} {
		if _, err := parseBaseURL(bad); err == nil {
			t.Errorf("parseBaseURL(%q) accepted", bad)
		}
	}
}

func TestBrowserNameNeverCopiesFreeText(t *testing.T) {
	cases := map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                         "Chrome/Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari/iOS",
		"Your access expires today. Call +1-555-0100": "",
		"Call+1-555-0100/1.0":                         "",
		"curl/8.5.0":                                  "",
		"":                                            "",
	}
	for ua, want := range cases {
		b, s := browserName(ua)
		if got := strings.Trim(b+"/"+s, "/"); got != want {
			t.Errorf("browserName(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestMailResourceDropsQueryAndCuts(t *testing.T) {
	if got := mailResource("/docs/a b?Call now"); got != "/docs/a%20b" {
		t.Errorf("got %q", got)
	}
	if got := mailResource("/" + strings.Repeat("a", 100)); len(got) > maxMailResource+len("…") {
		t.Errorf("%d bytes", len(got))
	}
}

// Every reason flow gives for refusing an address has its own words for the
// guest, and a character the guest typed is named.
func TestEveryAddressReasonHasWords(t *testing.T) {
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	words := set.Words("en")
	fallback := words.AddressProblem("", "")
	for _, reason := range flow.AddressReasons() {
		if got := words.AddressProblem(string(reason), "%"); got == fallback || got == "" || strings.Contains(got, "%!") {
			t.Errorf("reason %q: %q", reason, got)
		}
	}
	if got := addressProblem(words, func() error { _, err := flow.ParseAddress("victim%evil.example@contoso.com"); return err }()); !strings.Contains(got, "“%” routes mail") {
		t.Errorf("routing: %q", got)
	}
}
