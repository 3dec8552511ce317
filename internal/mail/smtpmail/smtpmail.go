// Package smtpmail delivers flow messages over SMTP with STARTTLS, implicit TLS
// or (for local relays and tests) no TLS, with optional authentication.
package smtpmail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/capool"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which is required
	TLSImplicit = "implicit" // TLS from the first byte (SMTPS, port 465)
	TLSNone     = "none"     // no TLS: only for a relay on the same host or network
)

// SASL mechanisms that may be asked for.
const (
	AuthPlain = "plain"
	AuthLogin = "login"
)

// Config is an SMTP relay.
type Config struct {
	Host     string
	Port     int // default 587, or 465 for implicit TLS
	Username string
	Password string
	From     string // "Name <addr@example.com>" or "addr@example.com"
	TLS      string // default starttls
	Timeout  time.Duration
	// Auth is the SASL mechanism: "plain", "login" or "" to pick the
	// strongest the server offers. Only over TLS.
	Auth string
	// CAFile is a PEM file of the CAs to trust instead of the system's.
	CAFile string
	// InsecureSkipVerify accepts any certificate: for tests only.
	InsecureSkipVerify bool
}

// Mailer sends each message on its own connection. A relay is a few
// milliseconds away on a network that matters, and code emails are rare next
// to page views, so a pool's gain is small against its stale-connection
// failures; the delivery queue's workers bound the connections instead.
type Mailer struct {
	cfg  Config
	from *mail.Address
	tls  *tls.Config
}

// CheckTLS refuses a TLS mode that is not one of the three.
func CheckTLS(mode string) error {
	switch mode {
	case TLSStartTLS, TLSImplicit, TLSNone:
		return nil
	}
	return fmt.Errorf("tls %q: use starttls, implicit or none", mode)
}

// CheckAuth refuses a SASL mechanism other than plain or login; "" (pick
// the strongest offered) is fine.
func CheckAuth(mech string) error {
	switch mech {
	case "", AuthPlain, AuthLogin:
		return nil
	}
	return fmt.Errorf("auth %q: use plain or login, or leave it out to negotiate", mech)
}

// New checks cfg and returns a Mailer; it opens no connection.
func New(cfg Config) (*Mailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("host is required")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if err := CheckTLS(cfg.TLS); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = map[string]int{TLSStartTLS: 587, TLSNone: 587, TLSImplicit: 465}[cfg.TLS]
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("port %d is out of range", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("from %q: %v (write it as \"Name <addr@example.com>\")", cfg.From, err)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("username and password go together")
	}
	if err := CheckAuth(cfg.Auth); err != nil {
		return nil, err
	}
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
	if cfg.CAFile != "" {
		if tc.RootCAs, err = capool.Load(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	return &Mailer{cfg: cfg, from: from, tls: tc}, nil
}

func (m *Mailer) client() (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	opts = append(opts, gomail.WithTLSConfig(m.tls))
	if m.cfg.Username != "" {
		mech := map[string]gomail.SMTPAuthType{
			"":        gomail.SMTPAuthAutoDiscover, // the strongest the server offers
			AuthPlain: gomail.SMTPAuthPlain,
			AuthLogin: gomail.SMTPAuthLogin,
		}[m.cfg.Auth]
		opts = append(opts, gomail.WithSMTPAuth(mech),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	return gomail.NewClient(m.cfg.Host, opts...)
}

// Send implements flow.Mailer.
func (m *Mailer) Send(ctx context.Context, msg flow.Message) error {
	g := gomail.NewMsg()
	if err := g.FromFormat(m.from.Name, m.from.Address); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := g.To(msg.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	// go-mail encodes header values, so a CR/LF in a subject can't add a header.
	g.Subject(msg.Subject)
	g.SetGenHeader("Auto-Submitted", "auto-generated")
	g.SetMessageID()
	g.SetDate()
	g.SetBodyString(gomail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		g.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	// go-mail watches ctx while dialling only; past that, its connection
	// deadlines end a stuck session within Timeout. Returning at ctx's end
	// keeps the Mailer contract (a shutdown need not wait for a slow relay).
	done := make(chan error, 1)
	go func() { done <- c.DialAndSendWithContext(ctx, g) }()
	select {
	case err := <-done:
		return classify(err)
	case <-ctx.Done():
		return fmt.Errorf("sending to %s:%d: %w", m.cfg.Host, m.cfg.Port, ctx.Err())
	}
}

// classify marks the failures that a retry won't fix: a 5xx reply (mailbox
// refused, authentication failed) and a certificate that does not verify.
// 4xx replies and network errors stay temporary.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return flow.Permanent(err)
	}
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) {
		return flow.Permanent(err)
	}
	if code := smtpCode(err); code >= 500 && code < 600 {
		return flow.Permanent(err)
	}
	return err
}

var _ flow.Mailer = (*Mailer)(nil)

// smtpCode finds an SMTP reply code in errors that go-mail passes on
// unwrapped, e.g. a refused AUTH.
func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
