package smtpmail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
	"github.com/otpgate/caddy-email-otp/internal/mail/smtpmail"
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

func send(t *testing.T, cfg smtpmail.Config, to string) error {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Docs <docs@example.com>"
	}
	if cfg.Host == "" {
		cfg.Host = "localhost"
	}
	m, err := smtpmail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m.Send(context.Background(), flow.Message{To: to, Subject: "s", Text: "code 12345678"})
}

func TestTLSModesAndAuth(t *testing.T) {
	serverTLS, caFile := smtpsink.TestCA(t)
	users := map[string]string{"apikey": "s3cret"}
	starttls := smtpsink.StartWith(t, smtpsink.Options{TLS: serverTLS, Users: users})
	implicit := smtpsink.StartWith(t, smtpsink.Options{TLS: serverTLS, Implicit: true, Users: users})

	for name, c := range map[string]struct {
		sink *smtpsink.Sink
		cfg  smtpmail.Config
	}{
		"starttls, auth plain":      {starttls, smtpmail.Config{TLS: smtpmail.TLSStartTLS, CAFile: caFile, Username: "apikey", Password: "s3cret", Auth: smtpmail.AuthPlain}},
		"starttls, auth login":      {starttls, smtpmail.Config{TLS: smtpmail.TLSStartTLS, CAFile: caFile, Username: "apikey", Password: "s3cret", Auth: smtpmail.AuthLogin}},
		"starttls, negotiated auth": {starttls, smtpmail.Config{CAFile: caFile, Username: "apikey", Password: "s3cret"}},
		"implicit TLS":              {implicit, smtpmail.Config{TLS: smtpmail.TLSImplicit, CAFile: caFile, Username: "apikey", Password: "s3cret"}},
		"insecure_skip_verify":      {implicit, smtpmail.Config{TLS: smtpmail.TLSImplicit, InsecureSkipVerify: true, Username: "apikey", Password: "s3cret"}},
	} {
		c.cfg.Port = c.sink.Port
		to := strings.ReplaceAll(name, " ", "") + "@example.com"
		to = strings.Map(func(r rune) rune {
			if r == ',' || r == '_' {
				return '-'
			}
			return r
		}, to)
		if err := send(t, c.cfg, to); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		c.sink.Wait(t, to, 1, 5*time.Second)
	}
}

func TestPermanentFailuresAreMarked(t *testing.T) {
	serverTLS, caFile := smtpsink.TestCA(t)
	_, otherCA := smtpsink.TestCA(t)
	users := map[string]string{"apikey": "s3cret"}
	sink := smtpsink.StartWith(t, smtpsink.Options{TLS: serverTLS, Users: users})

	for name, cfg := range map[string]smtpmail.Config{
		"wrong password":       {Port: sink.Port, CAFile: caFile, Username: "apikey", Password: "wrong"},
		"untrusted server":     {Port: sink.Port, CAFile: otherCA, Username: "apikey", Password: "s3cret"},
		"no auth where needed": {Port: sink.Port, CAFile: caFile},
	} {
		err := send(t, cfg, "x@example.com")
		if err == nil || !flow.IsPermanent(err) {
			t.Errorf("%s: err %v, want a permanent failure", name, err)
		}
	}
	if n := sink.Count("x@example.com"); n != 0 {
		t.Errorf("%d messages got through", n)
	}
}

func TestReplyCodesDecideRetry(t *testing.T) {
	sink := smtpsink.Start(t)
	cfg := smtpmail.Config{Host: "127.0.0.1", Port: sink.Port, TLS: smtpmail.TLSNone}
	sink.Refuse(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"})
	if err := send(t, cfg, "a@example.com"); err == nil || flow.IsPermanent(err) {
		t.Errorf("451: err %v, want a temporary failure", err)
	}
	sink.Refuse(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"})
	if err := send(t, cfg, "a@example.com"); err == nil || !flow.IsPermanent(err) {
		t.Errorf("550: err %v, want a permanent failure", err)
	}
	if err := send(t, cfg, "a@example.com"); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
}

func TestSlowServerTimesOut(t *testing.T) {
	sink := smtpsink.StartWith(t, smtpsink.Options{Delay: 3 * time.Second})
	start := time.Now()
	err := send(t, smtpmail.Config{Host: "127.0.0.1", Port: sink.Port, TLS: smtpmail.TLSNone, Timeout: 500 * time.Millisecond}, "a@example.com")
	if err == nil || flow.IsPermanent(err) {
		t.Errorf("err %v, want a temporary failure", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 500ms timeout took %v", d)
	}
}

// BenchmarkSend measures one message on its own connection against a local
// relay, plain and with STARTTLS: the cost a pool could save.
func BenchmarkSend(b *testing.B) {
	serverTLS, caFile := smtpsink.TestCA(b)
	for _, c := range []struct {
		name string
		opts smtpsink.Options
		cfg  smtpmail.Config
	}{
		{"plain", smtpsink.Options{}, smtpmail.Config{TLS: smtpmail.TLSNone}},
		{"starttls", smtpsink.Options{TLS: serverTLS}, smtpmail.Config{CAFile: caFile}},
	} {
		b.Run(c.name, func(b *testing.B) {
			sink := smtpsink.StartWith(b, c.opts)
			cfg := c.cfg
			cfg.Host, cfg.Port, cfg.From = "localhost", sink.Port, "docs@example.com"
			m, err := smtpmail.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			msg := flow.Message{To: "bob@contoso.com", Subject: "s", Text: "code 12345678", HTML: "<p>12345678</p>"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Send(context.Background(), msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
