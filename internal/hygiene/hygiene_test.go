package hygiene

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

var ours = Headers{"X-Auth-Email", "X-Auth-Tenant", "X-Auth-Assertion"}

var gateway = Cookies{Marker: "email_otp_", Bases: []string{"email_otp_session", "email_otp_pending"}}

func TestStripClientRemovesEveryDisguise(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader("body"))
	r.Header["X-Auth-Email"] = []string{"a"}
	r.Header["X_Auth_Email"] = []string{"b"}
	r.Header["x-auth-email"] = []string{"c"}
	r.Header["X-AUTH-TENANT"] = []string{"d"}
	r.Header["X_auth_assertion"] = []string{"e"}
	r.Header["X-Other"] = []string{"kept"}
	r.Header["Connection"] = []string{"keep-alive, X-Auth-Email", "x_auth_tenant"}
	r.Trailer = http.Header{"X-Auth-Email": nil}
	ours.StripClient(r)
	if len(r.Header) != 2 || r.Header.Get("X-Other") != "kept" {
		t.Errorf("headers left: %v", r.Header)
	}
	if got := r.Header["Connection"]; !slices.Equal(got, []string{"keep-alive"}) {
		t.Errorf("Connection left %q, want keep-alive alone", got)
	}
	// net/http fills trailers in as the body ends: they must be gone then.
	r.Trailer["X_Auth_Email"] = []string{"late"}
	if _, err := io.ReadAll(r.Body); err != nil {
		t.Fatal(err)
	}
	if len(r.Trailer) != 0 {
		t.Errorf("trailers left after the body: %v", r.Trailer)
	}
}

func TestConnectionWithoutOurTokensIsUntouched(t *testing.T) {
	values := []string{"keep-alive, Upgrade"}
	if got := ours.withoutTokens(values); &got[0] != &values[0] {
		t.Errorf("a Connection line naming none of ours was rebuilt: %q", got)
	}
}

func TestRemoveFromCookieLines(t *testing.T) {
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
		(&gateway).RemoveFrom(h)
		if got := h["Cookie"]; !slices.Equal(got, c.want) {
			t.Errorf("%q: left %q, want %q", c.lines, got, c.want)
		}
		if !slices.Equal(sent, c.lines) {
			t.Errorf("%q: the header's own slice was changed to %q", c.lines, sent)
		}
	}
}

func TestGuardDropsOnlyTheGatewaysSetCookies(t *testing.T) {
	rec := httptest.NewRecorder()
	w := (&gateway).Guard(rec)
	w.Header().Add("Set-Cookie", "email_otp_session=planted; Path=/")
	w.Header().Add("Set-Cookie", "__Host-email_otp_pending=x; Path=/; Secure")
	w.Header().Add("Set-Cookie", "theme=dark; Path=/")
	if _, err := io.WriteString(w, "page"); err != nil {
		t.Fatal(err)
	}
	if got := rec.Header()["Set-Cookie"]; !slices.Equal(got, []string{"theme=dark; Path=/"}) {
		t.Errorf("Set-Cookie reaching the client: %q", got)
	}
	if rec.Body.String() != "page" {
		t.Errorf("body %q", rec.Body.String())
	}
}

// FuzzRemoveFrom: whatever the Cookie line, net/http reads none of the
// gateway's cookies from what is left, and every other cookie it read from
// the line is still there.
func FuzzRemoveFrom(f *testing.F) {
	for _, seed := range []string{"theme=dark; email_otp_session=abc", "__Host-email_otp_session=a;;b=2", " email_otp_pending = x ;c=3", "email_otp_x=1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		before := (&http.Request{Header: http.Header{"Cookie": {line}}}).Cookies()
		h := http.Header{"Cookie": {line}}
		(&gateway).RemoveFrom(h)
		after := (&http.Request{Header: h}).Cookies()
		var others []string
		for _, c := range before {
			if !(&gateway).Has(c.Name) {
				others = append(others, c.Name+"="+c.Value)
			}
		}
		var left []string
		for _, c := range after {
			if (&gateway).Has(c.Name) {
				t.Fatalf("%q: %s is left", line, c.Name)
			}
			left = append(left, c.Name+"="+c.Value)
		}
		if !slices.Equal(left, others) {
			t.Fatalf("%q: other cookies %q became %q", line, others, left)
		}
	})
}
