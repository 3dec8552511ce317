package emailotp

import (
	"net/http"
	"time"

	"github.com/otpgate/caddy-email-otp/templates"
)

// serveOutbox shows the dev mailer's outbox to requests from this machine
// (fromThisMachine); to everyone
// else, and with any other mailer, it does not exist.
func (g *Gateway) serveOutbox(w http.ResponseWriter, r *http.Request, t tenant) {
	dev, isDev := g.modules.mailer.(*DevMailer)
	if !isDev || !fromThisMachine(r) {
		g.pages.errorPage(w, r, t, http.StatusNotFound, templates.NotFoundTitle, templates.NotFoundText, nil)
		return
	}
	var entries []templates.OutboxEntry
	for _, e := range dev.Messages() {
		entries = append(entries, templates.OutboxEntry{
			At: e.At.UTC().Format(time.RFC3339), To: e.To, Subject: e.Subject, Text: e.Text,
		})
	}
	g.pages.page(w, r, t, http.StatusOK, templates.PageOutbox, templates.PageData{Outbox: entries})
}
