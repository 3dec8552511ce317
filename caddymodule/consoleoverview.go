package emailotp

import (
	"net/http"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/funnel"
	"github.com/otpgate/caddy-email-otp/templates"
)

// funnelRows are the overview's rows: what each counts of the audit steps.
var funnelRows = []struct {
	label templates.Message
	steps []string
}{
	{templates.ConsoleFunnelAsked, []string{"code_requested"}},
	{templates.ConsoleFunnelSent, []string{"code_sent"}},
	{templates.ConsoleFunnelDelivered, []string{"delivered"}},
	{templates.ConsoleFunnelFailed, []string{"delivery_failed"}},
	{templates.ConsoleFunnelHeld, []string{"code_held", "rate_limited"}},
	{templates.ConsoleFunnelByCode, []string{"verified"}},
	{templates.ConsoleFunnelByPasskey, []string{"passkey_signed_in"}},
	{templates.ConsoleFunnelByProvider, []string{"oidc_returned"}},
}

// overview is a tenant's sign-in funnel over the last 24 hours and 7 days
// (every node's counts, from the funnel's files), and how this gateway's
// mail is doing.
func (c *consoleDesk) overview(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant) {
	if !c.allows(w, r, "GET, HEAD") {
		return
	}
	now := c.clock.Now()
	windows, err := c.guests.funnel.Windows(r.Context(), t.Key, now.Add(-24*time.Hour), now.Add(-7*24*time.Hour))
	if err != nil {
		c.pages.internalError(w, r, c.tenant, err)
		return
	}
	day, week := windows[0], windows[1]
	data := c.view(sess, "overview")
	v := data.Console
	v.Tenant = c.tenantLink(t.ID)
	o := &templates.ConsoleOverview{}
	v.Overview = o
	sum := func(counts funnel.Counts, steps []string) (n int) {
		for _, s := range steps {
			n += counts[s]
		}
		return n
	}
	dayMax, weekMax := 1, 1
	for _, row := range funnelRows {
		d, wk := sum(day, row.steps), sum(week, row.steps)
		dayMax, weekMax = max(dayMax, d), max(weekMax, wk)
		o.Rows = append(o.Rows, templates.ConsoleFunnelRow{Label: row.label, Day: d, Week: wk})
	}
	for i := range o.Rows {
		o.Rows[i].DayBar, o.Rows[i].WeekBar = o.Rows[i].Day*100/dayMax, o.Rows[i].Week*100/weekMax
	}
	h := c.health(r.Context())
	o.Queue, o.Journal = h.Queue, h.Journal
	o.StoreOK, o.StoreLatency = h.Store.OK, h.Store.LatencyMS
	if h.Mailer != nil {
		o.MailResult, o.MailAt = h.Mailer.Result, consoleTime(&h.Mailer.At)
		if c.admins.ofAll(sess.Email) {
			// The mailer's answer may be about another tenant's guest
			// ("550 no such mailbox <bob@…>"): a tenant's admin sees
			// whether mail goes out, not to whom.
			o.MailError = h.Mailer.Error
		}
	}
	c.pages.page(w, r, c.tenant, http.StatusOK, templates.PageConsole, data)
}
