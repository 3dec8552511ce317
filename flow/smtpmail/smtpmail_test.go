package smtpmail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/smtpmail"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

func TestSendDeliversMultipartMessage(t *testing.T) {
	sink := smtpsink.Start(t)
	m, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: sink.Port, TLS: smtpmail.TLSNone, From: "Shared documents <docs@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), flow.Message{
		To:      "bob@contoso.com",
		Subject: "12345678 is your code\r\nBcc: victim@example.com",
		Text:    "Your code is 12345678",
		HTML:    "<p>Your code is <b>12345678</b></p>",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := sink.Wait(t, "bob@contoso.com", 1, 5*time.Second)
	if len(got.To) != 1 || got.From != "docs@example.com" {
		t.Errorf("envelope from %q to %v", got.From, got.To)
	}
	if got.Header.Get("Bcc") != "" || strings.Contains(string(got.Raw), "\r\nBcc:") {
		t.Errorf("a CR/LF in the subject added a header:\n%s", got.Raw)
	}
	for _, h := range []string{"Date", "Message-Id", "Auto-Submitted"} {
		if got.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if !strings.Contains(got.Text, "12345678") || !strings.Contains(got.HTML, "<b>12345678</b>") {
		t.Errorf("parts: text %q html %q", got.Text, got.HTML)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for name, c := range map[string]smtpmail.Config{
		"no host":     {From: "a@b.co"},
		"bad tls":     {Host: "h", From: "a@b.co", TLS: "ssl"},
		"bad from":    {Host: "h", From: "not an address"},
		"user no pwd": {Host: "h", From: "a@b.co", Username: "u"},
		"bad port":    {Host: "h", From: "a@b.co", Port: 70000},
	} {
		if _, err := smtpmail.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUnreachableRelayFailsWithinTimeout(t *testing.T) {
	m, err := smtpmail.New(smtpmail.Config{Host: "127.0.0.1", Port: 1, TLS: smtpmail.TLSNone, From: "a@b.co", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Send(context.Background(), flow.Message{To: "x@y.co", Subject: "s", Text: "t"}); err == nil {
		t.Fatal("sending to a closed port succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failure took %v", d)
	}
}
