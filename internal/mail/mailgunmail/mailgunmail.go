// Package mailgunmail delivers flow messages through Mailgun's HTTP API with
// mailgun/mailgun-go.
package mailgunmail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"time"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Regions.
const (
	RegionUS = "us"
	RegionEU = "eu"
)

// Config is a Mailgun sending domain.
type Config struct {
	Domain string // the sending domain, e.g. mg.example.com
	APIKey string
	From   string // "Name <addr@mg.example.com>" or a bare address
	Region string // us (default) or eu: where the domain's data lives
	// APIBase overrides the region's endpoint (e.g. a test server),
	// "https://host/v3".
	APIBase string
	Timeout time.Duration // per message; default 15s
}

// Mailer sends through Mailgun.
type Mailer struct {
	mg   *mailgun.MailgunImpl
	from string
}

// CheckRegion refuses a region other than us or eu; "" is us.
func CheckRegion(region string) error {
	switch region {
	case "", RegionUS, RegionEU:
		return nil
	}
	return fmt.Errorf("region %q: use us or eu", region)
}

// New checks cfg; it calls no API, so a typo in the key shows at the first
// send (a permanent failure, logged) rather than slowing every reload.
func New(cfg Config) (*Mailer, error) {
	switch {
	case cfg.Domain == "":
		return nil, errors.New("domain is required")
	case cfg.APIKey == "":
		return nil, errors.New("api_key is required")
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("from %q: %v (write it as \"Name <addr@%s>\")", cfg.From, err, cfg.Domain)
	}
	mg := mailgun.NewMailgun(cfg.Domain, cfg.APIKey)
	if err := CheckRegion(cfg.Region); err != nil {
		return nil, err
	}
	mg.SetAPIBase(mailgun.APIBaseUS)
	if cfg.Region == RegionEU {
		mg.SetAPIBase(mailgun.APIBaseEU)
	}
	if cfg.APIBase != "" {
		mg.SetAPIBase(cfg.APIBase)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	mg.SetClient(&http.Client{Timeout: cfg.Timeout})
	return &Mailer{mg: mg, from: cfg.From}, nil
}

// Send implements flow.Mailer.
func (m *Mailer) Send(ctx context.Context, msg flow.Message) error {
	mm := mailgun.NewMessage(m.from, msg.Subject, msg.Text, msg.To)
	if msg.HTML != "" {
		mm.SetHtml(msg.HTML)
	}
	mm.AddHeader("Auto-Submitted", "auto-generated")
	_, _, err := m.mg.Send(ctx, mm)
	return classify(err)
}

// classify marks API answers no retry will fix: 4xx other than 429 (a bad
// key, an unverified domain, a refused address). 429, 5xx and network errors
// stay temporary.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ue *mailgun.UnexpectedResponseError
	if errors.As(err, &ue) && ue.Actual >= 400 && ue.Actual < 500 && ue.Actual != http.StatusTooManyRequests {
		return flow.Permanent(err)
	}
	return err
}

var _ flow.Mailer = (*Mailer)(nil)
