package emailotp

import (
	"context"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

// mailWriter writes the gateway's emails in the guest's language, with the
// tenant's name and look: the code email (flow asks for it through
// Config.Compose) and the invitation, which it puts on the delivery queue.
type mailWriter struct {
	pages *pageRenderer
	notMe notMeLinks
	taps  tapLinks
	queue *mailQueue
}

// codeMail is flow's Compose: the message that carries a code.
func (m *mailWriter) codeMail(c flow.CodeMail) (flow.Message, error) {
	notMe, err := m.notMe.link(c)
	if err != nil {
		return flow.Message{}, err
	}
	tap, err := m.taps.link(c)
	if err != nil {
		return flow.Message{}, err
	}
	browser, system := browserName(c.UserAgent)
	subject, text, html, err := m.pages.set.Email(templates.EmailData{
		Code:      c.Code,
		NotMeLink: notMe,
		TapLink:   tap,
		Tenant:    m.pages.tenantName(c.Tenant, m.pages.set.Words(c.Language)),
		Brand:     m.pages.tenantBrand(c.Tenant),
		Resource:  mailResource(c.Resource),
		Host:      c.Host,
		ClientIP:  c.ClientIP,
		Browser:   browser,
		System:    system,
		ExpiresIn: c.ExpiresIn,
		Lang:      m.pages.set.Language(c.Language),
	})
	if err != nil {
		return flow.Message{}, err
	}
	return flow.Message{To: c.To, Subject: subject, Text: text, HTML: html}, nil
}

// invite queues the invitation email to guest, with its sign-in link.
func (m *mailWriter) invite(ctx context.Context, guest directory.Guest, link, language string) error {
	data := templates.InviteData{
		Tenant: m.pages.tenantName(guest.Tenant, m.pages.set.Words(language)), Email: guest.Email, Link: link, InvitedBy: guest.InvitedBy,
		Lang: m.pages.set.Language(language), Brand: m.pages.tenantBrand(guest.Tenant),
	}
	if guest.InviteExpires != nil {
		data.Expires = *guest.InviteExpires
	}
	subject, text, html, err := m.pages.set.Invitation(data)
	if err != nil {
		return err
	}
	return m.queue.Dispatch(ctx, flow.Envelope{
		Tenant:  guest.Tenant,
		Message: flow.Message{To: guest.Email, Subject: subject, Text: text, HTML: html},
	})
}
