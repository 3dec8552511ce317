package emailotp

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/mail/devmail"
	"github.com/otpgate/caddy-email-otp/internal/mail/mailgunmail"
	"github.com/otpgate/caddy-email-otp/internal/mail/smtpmail"
)

func init() {
	caddy.RegisterModule(DevMailer{})
	caddy.RegisterModule(SMTPMailer{})
	caddy.RegisterModule(MailgunMailer{})
}

// Mailer is a module in the http.handlers.email_otp.mailers namespace.
type Mailer interface {
	flow.Mailer
}

// outboxes keeps the dev outbox across config reloads.
var outboxes = caddy.NewUsagePool()

const outboxKey = "dev"

// DevMailer delivers nothing: it logs each message (code included, which is the
// point of a development mailer) and keeps the last 100 in an outbox served at
// /.email-otp/outbox to loopback clients. It is the default mailer.
type DevMailer struct {
	outbox *devmail.Outbox
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (DevMailer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp.mailers.dev",
		New: func() caddy.Module { return new(DevMailer) },
	}
}

// Provision implements caddy.Provisioner.
func (m *DevMailer) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	var err error
	m.outbox, err = loadPooled(outboxes, outboxKey, func() *devmail.Outbox { return devmail.New(100) })
	return err
}

// Cleanup implements caddy.CleanerUpper.
func (m *DevMailer) Cleanup() error {
	_, err := outboxes.Delete(outboxKey)
	return err
}

// Send implements flow.Mailer.
func (m *DevMailer) Send(ctx context.Context, msg flow.Message) error {
	if err := m.outbox.Send(ctx, msg); err != nil {
		return err
	}
	m.logger.Warn("dev mailer: message not delivered, kept in the outbox (use mailer smtp in production)",
		zap.String("to", msg.To), zap.String("subject", msg.Subject), zap.String("text", msg.Text))
	return nil
}

// Messages returns the outbox, newest first.
func (m *DevMailer) Messages() []devmail.Entry { return m.outbox.Messages() }

// UnmarshalCaddyfile sets up the dev mailer; it takes no options:
//
//	mailer dev
func (m *DevMailer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalModuleBlock(d, "mailer dev", nil, func(opt, _ string) error {
		return fmt.Errorf("takes no options, got %q", opt)
	})
}

// SMTPMailer delivers through an SMTP relay, one connection per message.
type SMTPMailer struct {
	// Host name of the relay. Required.
	Host string `json:"host,omitempty"`
	// Port of the relay. Default: 587, or 465 with tls implicit.
	Port int `json:"port,omitempty"`
	// Username for SMTP AUTH; accepts {env.*} and {file.*} placeholders.
	// Default: none (no authentication).
	Username string `json:"username,omitempty"`
	// Password for SMTP AUTH; accepts {env.*} and {file.*} placeholders.
	// Default: none.
	Password string `json:"password,omitempty"`
	// Sender, as "Name <address>" or a bare address. Required.
	From string `json:"from,omitempty"`
	// TLS mode: "starttls" (required upgrade), "implicit" (TLS from the first
	// byte) or "none" (a relay on the same host only). Default: starttls.
	TLS string `json:"tls,omitempty"`
	// Longest time to connect and hand over one message. Default: 15s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// SASL mechanism: "plain" or "login". Default: the strongest offered.
	Auth string `json:"auth,omitempty"`
	// PEM file of the CAs that sign the relay's certificate, instead of the
	// system's. Default: none.
	CAFile string `json:"ca_file,omitempty"`
	// Accept any certificate. For tests only. Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`

	mailer *smtpmail.Mailer
}

// CaddyModule returns the Caddy module information.
func (SMTPMailer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp.mailers.smtp",
		New: func() caddy.Module { return new(SMTPMailer) },
	}
}

// Provision implements caddy.Provisioner. It opens no connection: delivery
// problems show at request time, and a reload never waits on the network.
func (m *SMTPMailer) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	var err error
	m.mailer, err = smtpmail.New(smtpmail.Config{
		Host:     repl.ReplaceAll(m.Host, ""),
		Port:     m.Port,
		Username: repl.ReplaceAll(m.Username, ""),
		Password: repl.ReplaceAll(m.Password, ""),
		From:     m.From,
		TLS:      m.TLS,
		Timeout:  time.Duration(m.Timeout),
		Auth:     m.Auth,
		CAFile:   m.CAFile,

		InsecureSkipVerify: m.InsecureSkipVerify,
	})
	if err != nil {
		return fmt.Errorf("mailer smtp: %w", err)
	}
	return nil
}

// Send implements flow.Mailer.
func (m *SMTPMailer) Send(ctx context.Context, msg flow.Message) error {
	return m.mailer.Send(ctx, msg)
}

// UnmarshalCaddyfile sets up the SMTP mailer:
//
//	mailer smtp {
//		host     <host>
//		port     <port>
//		username <user>
//		password <password>       # e.g. {env.SMTP_PASSWORD}
//		from     "Name <addr@example.com>"
//		tls      starttls|implicit|none
//		timeout  <duration>
//		auth     plain|login
//		ca_file  <pem file>
//		insecure_skip_verify
//	}
func (m *SMTPMailer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	flags := map[string]*bool{"insecure_skip_verify": &m.InsecureSkipVerify}
	return unmarshalModuleBlock(d, "mailer smtp", flags, func(opt, val string) error {
		var err error
		switch opt {
		case "host":
			m.Host = val
		case "port":
			p, perr := strconv.Atoi(val)
			if perr != nil || p < 1 || p > 65535 {
				return fmt.Errorf("port %q is not a port number", val)
			}
			m.Port = p
		case "username":
			m.Username = val
		case "password":
			m.Password = val
		case "from":
			m.From = val
		case "tls":
			m.TLS, err = val, smtpmail.CheckTLS(val)
		case "timeout":
			m.Timeout, err = parsePositiveDuration(opt, val)
		case "auth":
			m.Auth, err = val, smtpmail.CheckAuth(val)
		case "ca_file":
			m.CAFile = val
		default:
			return fmt.Errorf("unknown option %q (use host, port, username, password, from, tls, timeout, auth, ca_file, insecure_skip_verify)", opt)
		}
		return err
	})
}

// MailgunMailer delivers through Mailgun's HTTP API.
type MailgunMailer struct {
	// The Mailgun sending domain, e.g. mg.example.com. Required.
	Domain string `json:"domain,omitempty"`
	// The API key; accepts {env.*} and {file.*} placeholders. Required.
	APIKey string `json:"api_key,omitempty"`
	// Sender, as "Name <address>" or a bare address. Required.
	From string `json:"from,omitempty"`
	// Where the domain lives: "us" or "eu". Default: us.
	Region string `json:"region,omitempty"`
	// Overrides the region's API endpoint, "https://host/v3". Default: none.
	APIBase string `json:"api_base,omitempty"`
	// Longest time for one API call. Default: 15s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	mailer *mailgunmail.Mailer
}

// CaddyModule returns the Caddy module information.
func (MailgunMailer) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.email_otp.mailers.mailgun",
		New: func() caddy.Module { return new(MailgunMailer) },
	}
}

// Provision implements caddy.Provisioner; it calls no API.
func (m *MailgunMailer) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	var err error
	m.mailer, err = mailgunmail.New(mailgunmail.Config{
		Domain:  m.Domain,
		APIKey:  repl.ReplaceAll(m.APIKey, ""),
		From:    m.From,
		Region:  m.Region,
		APIBase: m.APIBase,
		Timeout: time.Duration(m.Timeout),
	})
	if err != nil {
		return fmt.Errorf("mailer mailgun: %w", err)
	}
	return nil
}

// Send implements flow.Mailer.
func (m *MailgunMailer) Send(ctx context.Context, msg flow.Message) error {
	return m.mailer.Send(ctx, msg)
}

// UnmarshalCaddyfile sets up the Mailgun mailer:
//
//	mailer mailgun {
//		domain   <sending domain>
//		api_key  <key>                  # e.g. {env.MAILGUN_API_KEY}
//		from     "Name <addr@mg.example.com>"
//		region   us|eu
//		api_base <https://host/v3>
//		timeout  <duration>
//	}
func (m *MailgunMailer) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return unmarshalModuleBlock(d, "mailer mailgun", nil, func(opt, val string) error {
		var err error
		switch opt {
		case "domain":
			m.Domain = val
		case "api_key":
			m.APIKey = val
		case "from":
			m.From = val
		case "region":
			m.Region, err = val, mailgunmail.CheckRegion(val)
		case "api_base":
			m.APIBase = val
		case "timeout":
			m.Timeout, err = parsePositiveDuration(opt, val)
		default:
			return fmt.Errorf("unknown option %q (use domain, api_key, from, region, api_base, timeout)", opt)
		}
		return err
	})
}

// Interface guards
var (
	_ Mailer                = (*MailgunMailer)(nil)
	_ caddy.Provisioner     = (*MailgunMailer)(nil)
	_ caddyfile.Unmarshaler = (*MailgunMailer)(nil)
	_ Mailer                = (*DevMailer)(nil)
	_ caddy.Provisioner     = (*DevMailer)(nil)
	_ caddy.CleanerUpper    = (*DevMailer)(nil)
	_ caddyfile.Unmarshaler = (*DevMailer)(nil)
	_ Mailer                = (*SMTPMailer)(nil)
	_ caddy.Provisioner     = (*SMTPMailer)(nil)
	_ caddyfile.Unmarshaler = (*SMTPMailer)(nil)
)
