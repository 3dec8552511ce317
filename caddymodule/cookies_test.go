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

func TestRemoveGatewayCookies(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  []string // nil: no Cookie header left
	}{
		{[]string{"theme=dark; email_otp_session=abc"}, []string{"theme=dark"}},
		{[]string{"email_otp_session=abc"}, nil},
		{[]string{"a=1; email_otp_pending=x; b=2;  email_otp_session=y ;c=3"}, []string{"a=1; b=2; c=3"}},
		{[]string{"__Host-email_otp_session=abc; __Secure-email_otp_pending=p; lang=de"}, []string{"lang=de"}},
		{[]string{"email_otp_session=abc", "theme=dark"}, []string{"theme=dark"}},
		{[]string{"my_email_otp_session_id=7; theme=dark"}, []string{"my_email_otp_session_id=7; theme=dark"}},
		{[]string{"theme=dark"}, []string{"theme=dark"}},
	} {
		sent := slices.Clone(c.lines)
		h := http.Header{"Cookie": sent}
		removeGatewayCookies(h)
		if got := h["Cookie"]; !slices.Equal(got, c.want) {
			t.Errorf("%q: left %q, want %q", c.lines, got, c.want)
		}
		if !slices.Equal(sent, c.lines) {
			t.Errorf("%q: the header's own slice was changed to %q", c.lines, sent)
		}
		for _, ck := range (&http.Request{Header: h}).Cookies() {
			if isGatewayCookie(ck.Name) {
				t.Errorf("%q: %s reaches the backend", c.lines, ck.Name)
			}
		}
	}
}
