package emailotp

import (
	"net/http"
	"slices"
	"testing"
)

func TestCookieValues(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  []string
	}{
		{[]string{"email_otp_session=abc"}, []string{"abc"}},
		{[]string{"  theme=dark ;email_otp_session= abc ; x=1"}, []string{" abc"}}, // as net/http: the value keeps its inner space
		{[]string{`email_otp_session="abc"`}, []string{"abc"}},
		{[]string{"email_otp_session=a; email_otp_session=b", "email_otp_session=c"}, []string{"a", "b", "c"}},
		{[]string{"Email_otp_session=a; email_otp_sessionx=b; xemail_otp_session=c; email_otp_session="}, nil},
		{[]string{"email_otp_session"}, nil},
		{nil, nil},
	} {
		r := &http.Request{Header: http.Header{"Cookie": c.lines}}
		got := slices.Collect(cookieValues(r, sessionCookie))
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.lines, got, c.want)
		}
		// What net/http reads must be what the gateway reads.
		var std []string
		for _, ck := range r.CookiesNamed(sessionCookie) {
			if ck.Value != "" {
				std = append(std, ck.Value)
			}
		}
		if !slices.Equal(got, std) {
			t.Errorf("%q: the gateway reads %q, net/http %q", c.lines, got, std)
		}
	}
	long := make([]byte, maxCookieLen+1)
	for i := range long {
		long[i] = 'a'
	}
	r := &http.Request{Header: http.Header{"Cookie": {"email_otp_session=" + string(long)}}}
	if got := slices.Collect(cookieValues(r, sessionCookie)); len(got) != 0 {
		t.Error("an oversized value is read")
	}
}

// The hygiene package removes and guards what gatewayCookies names: every
// cookie the gateway sets, in each of its forms, and nothing else.
func TestGatewayCookiesNameEveryCookieTheGatewaySets(t *testing.T) {
	for _, base := range []string{sessionCookie, pendingCookie, deviceCookie} {
		for _, prefix := range []string{"", "__Host-", "__Secure-"} {
			if !gatewayCookies.Has(prefix + base) {
				t.Errorf("%s%s is not treated as the gateway's", prefix, base)
			}
		}
	}
	for _, other := range []string{"my_email_otp_session_id", "email_otp_sessionx", "theme"} {
		if gatewayCookies.Has(other) {
			t.Errorf("%s is treated as the gateway's", other)
		}
	}
}
