// Package smtpmail delivers flow messages over SMTP with STARTTLS, implicit TLS
// or (for local relays and tests) no TLS, with optional authentication.
package smtpmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/otpgate/caddy-email-otp/flow"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which is required
	TLSImplicit = "implicit" // TLS from the first byte (SMTPS, port 465)
	TLSNone     = "none"     // no TLS: only for a relay on the same host or network
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
	// TLSConfig overrides the TLS client settings (e.g. a private CA).
	TLSConfig *tls.Config
}

// Mailer sends each message on its own connection.
type Mailer struct {
	cfg  Config
	from *mail.Address
}

// New checks cfg and returns a Mailer; it opens no connection.
func New(cfg Config) (*Mailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("host is required")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	switch cfg.TLS {
	case TLSStartTLS, TLSNone:
		if cfg.Port == 0 {
			cfg.Port = 587
		}
	case TLSImplicit:
		if cfg.Port == 0 {
			cfg.Port = 465
		}
	default:
		return nil, fmt.Errorf("tls %q: use starttls, implicit or none", cfg.TLS)
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
	return &Mailer{cfg: cfg, from: from}, nil
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
	if m.cfg.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(m.cfg.TLSConfig))
	}
	if m.cfg.Username != "" {
		// Negotiate the strongest mechanism the server offers (PLAIN, LOGIN, …).
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
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
	return c.DialAndSendWithContext(ctx, g)
}

var _ flow.Mailer = (*Mailer)(nil)
