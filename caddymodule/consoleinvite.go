package emailotp

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

// consoleInvites is the console's invitation form, and the resending of an
// invitation: one or many addresses, the paths they may open, an expiry,
// the page the email opens, and whether the guest agrees first.
type consoleInvites struct {
	desk   *consoleDesk
	links  linkOrigin
	byHost bool // host tenants: each tenant's pages are on its own host
}

// maxInvitesAtOnce bounds one form: a longer list is a script's job (the
// admin API).
const maxInvitesAtOnce = 100

// inviteExpiries are the form's choices; "" never expires.
var inviteExpiries = []string{"7d", "30d", "90d", ""}

const defaultInviteExpiry = "30d"

func (ci *consoleInvites) serve(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant) {
	c := ci.desk
	if !c.allows(w, r, "GET, HEAD, POST") {
		return
	}
	if r.Method != http.MethodPost {
		ci.show(w, r, sess, t, http.StatusOK, templates.ConsoleInviteForm{
			Link: ci.tenantHome(r, t), Expires: defaultInviteExpiry, Send: true, Language: c.pages.words(r).Lang,
		})
		return
	}
	if c.confirmed(w, r, sess) {
		ci.post(w, r, sess, t)
	}
}

func (ci *consoleInvites) show(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant, status int, form templates.ConsoleInviteForm) {
	c := ci.desk
	data := c.view(sess, "invite")
	data.Console.Tenant = c.tenantLink(t.ID)
	data.CSRF = c.csrf.token(c.tenant, sess.ID)
	words := c.pages.words(r)
	for _, e := range inviteExpiries {
		text := words.Say(templates.ConsoleExpiresNever, nil)
		if e != "" {
			text = words.Say(templates.ConsoleExpiresDays, templates.Vars{"Count": expiryDays(e)})
		}
		form.Expiries = append(form.Expiries, templates.ConsoleOption{Value: e, Text: text, Selected: e == form.Expires})
	}
	for _, lang := range c.pages.set.Languages() {
		form.Languages = append(form.Languages, templates.ConsoleOption{Value: lang, Text: display.Self.Name(language.Make(lang)), Lang: lang, Selected: lang == form.Language})
	}
	data.Console.Invite = &form
	c.pages.page(w, r, c.tenant, status, templates.PageConsole, data)
}

// post invites every address of the form, or none when the form has a
// mistake; when an email can't be queued it stops there, and the form comes
// back with the addresses not yet invited.
func (ci *consoleInvites) post(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant) {
	c := ci.desk
	f, words := r.PostForm, c.pages.words(r)
	form := templates.ConsoleInviteForm{
		Emails: f.Get("emails"), Link: strings.TrimSpace(f.Get("link")), Paths: f.Get("paths"), Expires: f.Get("expires"),
		AskConsent: f.Get("ask_consent") != "", Send: f.Get("send") != "", Language: f.Get("language"),
	}
	emails, bad := addressList(form.Emails)
	switch {
	case len(bad) > 0:
		form.EmailsError = words.Say(templates.ConsoleInviteBadAddresses, templates.Vars{"Addresses": strings.Join(bad, ", ")})
	case len(emails) == 0:
		form.EmailsError = words.Say(templates.ConsoleInviteNoAddress, nil)
	case len(emails) > maxInvitesAtOnce:
		form.EmailsError = words.Say(templates.ConsoleInviteTooMany, templates.Vars{"Count": maxInvitesAtOnce})
	}
	paths := lines(form.Paths)
	if err := directory.CheckPaths(paths); err != nil {
		form.PathsError = words.Say(templates.ConsoleInviteBadPaths, nil)
	}
	if !slices.Contains(inviteExpiries, form.Expires) {
		form.Expires = defaultInviteExpiry
	}
	if !slices.Contains(c.pages.set.Languages(), form.Language) {
		form.Language = words.Lang
	}
	if form.Send && len(emails) > 0 {
		if _, _, err := invitationLink(form.Link, t.Key, emails[0]); err != nil {
			form.LinkError = words.Say(templates.ConsoleInviteBadLink, nil)
		}
	}
	if form.EmailsError != "" || form.PathsError != "" || form.LinkError != "" {
		ci.show(w, r, sess, t, http.StatusBadRequest, form)
		return
	}
	inv := directory.Invitation{InvitedBy: sess.Email, Paths: paths, AskConsent: form.AskConsent}
	if form.Expires != "" {
		until := c.clock.Now().Add(time.Duration(expiryDays(form.Expires)) * 24 * time.Hour).UTC()
		inv.Expires = &until
	}
	for i, email := range emails {
		_, err := invite(r.Context(), c.guests.Directory, c.log.Logger, c.log.audit, invitation{
			Tenant: t.Key, Email: email, Invitation: inv, Link: form.Link, Send: form.Send, Language: form.Language,
		}, r.RemoteAddr, zap.String("admin", sess.Email))
		if err != nil {
			c.log.Warn("console invitation stopped", zap.String("tenant", t.ID), zap.Int("invited", i), zap.Int("asked", len(emails)), zap.Error(err))
			status, why := http.StatusServiceUnavailable, templates.ConsoleInviteQueueFull
			if !errors.Is(err, errInviteQueue) {
				status, why = http.StatusInternalServerError, templates.ConsoleInviteFailed
			}
			form.Emails, form.Notice = strings.Join(emails[i:], "\n"), words.Say(why, nil)
			if i > 0 {
				form.Notice = words.Say(templates.ConsoleInviteDoneSoFar, templates.Vars{"Done": strings.Join(emails[:i], ", ")}) + " " + form.Notice
			}
			ci.show(w, r, sess, t, status, form)
			return
		}
	}
	if len(emails) == 1 {
		c.redirect(w, r, c.guestPath(t.ID, emails[0])+"?done=invite")
		return
	}
	c.redirect(w, r, c.tenantPath(t.ID)+"?done=invite&n="+strconv.Itoa(len(emails)))
}

// resend sends g's invitation again, to the tenant's home page: the same
// paths and inviter, and as long to redeem it as the first time.
func (ci *consoleInvites) resend(r *http.Request, t tenant, g directory.Guest, admin string) error {
	c := ci.desk
	inv := directory.Invitation{InvitedBy: g.InvitedBy, Paths: g.Paths, AskConsent: g.AskConsent}
	if inv.InvitedBy == "" {
		inv.InvitedBy = admin
	}
	if g.InviteExpires != nil && g.InvitedAt != nil {
		until := c.clock.Now().Add(g.InviteExpires.Sub(*g.InvitedAt)).UTC()
		inv.Expires = &until
	}
	_, err := invite(r.Context(), c.guests.Directory, c.log.Logger, c.log.audit, invitation{
		Tenant: t.Key, Email: g.Email, Invitation: inv, Link: ci.tenantHome(r, t), Send: true, Language: c.pages.words(r).Lang,
	}, r.RemoteAddr, zap.String("admin", admin))
	return err
}

// tenantHome is the tenant's root as its guests open it: where an
// invitation leads unless the admin names another page.
func (ci *consoleInvites) tenantHome(r *http.Request, t tenant) string {
	origin := ci.links.of(r)
	if ci.byHost && ci.links.base == nil {
		// The console is on one tenant's host; another's pages are on its
		// own, at the same port.
		if u, err := url.Parse(origin); err == nil {
			host := t.ID
			if port := u.Port(); port != "" {
				host = net.JoinHostPort(t.ID, port)
			}
			origin = u.Scheme + "://" + host
		}
	}
	return origin + t.Root
}

// expiryDays is the number of days of one of inviteExpiries.
func expiryDays(e string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(e, "d"))
	return n
}

// addressList reads the addresses of a form field as pasted from a mail
// client or a sheet: one per line, or separated by commas, semicolons or
// spaces, bare or as "Name <address>". It returns the valid ones, each
// once, and the rest as typed.
func addressList(field string) (emails, bad []string) {
	for _, piece := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' }) {
		piece = strings.TrimSpace(piece)
		words := strings.Fields(piece)
		switch {
		case piece == "":
			continue
		case !strings.Contains(piece, "@"):
			bad = append(bad, piece) // "not an address" stays one mistake
			continue
		case strings.HasSuffix(piece, ">") && strings.Contains(piece, "<"):
			words = []string{piece[strings.LastIndex(piece, "<")+1 : len(piece)-1]}
		}
		for _, word := range words {
			email, err := flow.ParseAddress(word)
			switch {
			case err != nil:
				bad = append(bad, word)
			case !slices.Contains(emails, email):
				emails = append(emails, email)
			}
		}
	}
	return emails, bad
}

// lines are a field's non-empty lines, trimmed.
func lines(field string) []string {
	var out []string
	for _, l := range strings.Split(field, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
