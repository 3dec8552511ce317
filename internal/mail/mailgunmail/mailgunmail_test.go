package mailgunmail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/integration/mailgunapi"
	"github.com/otpgate/caddy-email-otp/internal/mail/mailgunmail"
)

func newMailer(t *testing.T, base, key string, timeout time.Duration) *mailgunmail.Mailer {
	t.Helper()
	m, err := mailgunmail.New(mailgunmail.Config{Domain: "mg.example.com", APIKey: key, From: "Shared documents <docs@mg.example.com>", APIBase: base, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var msg = flow.Message{To: "bob@contoso.com", Subject: "Your sign-in code for Contoso", Text: "code 12345678", HTML: "<p>code <b>12345678</b></p>"}

func TestSendCarriesTheMessage(t *testing.T) {
	api := mailgunapi.Start(t, "mg.example.com", "key-123")
	if err := newMailer(t, api.URL+"/v3", "key-123", 0).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	f := api.Forms()[0]
	want := map[string]string{
		"to": "bob@contoso.com", "from": "Shared documents <docs@mg.example.com>", "subject": msg.Subject,
		"text": msg.Text, "html": msg.HTML, "h:Auto-Submitted": "auto-generated",
	}
	for k, v := range want {
		if got := strings.Join(f[k], ","); got != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
}

func TestAPIErrorsAreClassified(t *testing.T) {
	api := mailgunapi.Start(t, "mg.example.com", "key-123")
	m := newMailer(t, api.URL+"/v3", "key-123", 0)
	for status, permanent := range map[int]bool{400: true, 403: true, 429: false, 500: false, 503: false} {
		api.Answer(status)
		err := m.Send(context.Background(), msg)
		if err == nil || flow.IsPermanent(err) != permanent {
			t.Errorf("HTTP %d: err %v, permanent %v; want permanent %v", status, err, flow.IsPermanent(err), permanent)
		}
	}
	// A wrong key is a 401 from the server's own check.
	if err := newMailer(t, api.URL+"/v3", "wrong", 0).Send(context.Background(), msg); err == nil || !flow.IsPermanent(err) {
		t.Errorf("wrong key: err %v, want permanent", err)
	}
	if len(api.Forms()) != 0 {
		t.Errorf("%d refused messages were recorded", len(api.Forms()))
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	api := mailgunapi.Start(t, "mg.example.com", "key-123")
	api.Delay = 2 * time.Second
	start := time.Now()
	err := newMailer(t, api.URL+"/v3", "key-123", 300*time.Millisecond).Send(context.Background(), msg)
	if err == nil || flow.IsPermanent(err) {
		t.Errorf("err %v, want a temporary failure", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a 300ms timeout took %v", d)
	}
}

// TestAgainstMailgunGoMockServer checks the request against the mock server
// that mailgun-go itself ships, as a second opinion on the wire format.
func TestAgainstMailgunGoMockServer(t *testing.T) {
	srv := mailgun.NewMockServer()
	defer srv.Stop()
	if err := newMailer(t, srv.URL(), "key-123", 0).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range srv.Events() {
		if ev.GetName() == "accepted" {
			found = true
		}
	}
	if !found {
		t.Errorf("the mock server recorded no accepted message: %v", srv.Events())
	}
}

func TestNewChecksConfig(t *testing.T) {
	for name, c := range map[string]mailgunmail.Config{
		"no domain":  {APIKey: "k", From: "a@b.co"},
		"no key":     {Domain: "d", From: "a@b.co"},
		"bad from":   {Domain: "d", APIKey: "k", From: "nope"},
		"bad region": {Domain: "d", APIKey: "k", From: "a@b.co", Region: "ap"},
	} {
		if _, err := mailgunmail.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
