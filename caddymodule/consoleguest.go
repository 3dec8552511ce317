package emailotp

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

// consoleAction is what an admin may do to a guest, behind a confirmation.
type consoleAction struct {
	// do changes the guest; arg is the action's object (a passkey's id).
	do func(c *consoleDesk, r *http.Request, t tenant, g directory.Guest, arg, admin string) error
	// event and step are the admin log line and the audit step; an action
	// with no event writes its own lines.
	event, step          string
	label, confirm, done templates.Message
	backToList           bool
	// offered: the guest's page lists the action for g (a passkey's is
	// offered beside each passkey instead).
	offered func(g directory.Guest) bool
}

const deletePasskey = "passkey"

// directoryChange is an action that is one change of the directory.
func directoryChange(op func(*directory.Directory, context.Context, string, string, time.Time) (directory.Guest, error)) func(*consoleDesk, *http.Request, tenant, directory.Guest, string, string) error {
	return func(c *consoleDesk, r *http.Request, t tenant, g directory.Guest, _, _ string) error {
		_, err := op(c.guests.Directory, r.Context(), t.Key, g.Email, c.clock.Now())
		return err
	}
}

var consoleActions = map[string]consoleAction{
	"resend": {
		do: func(c *consoleDesk, r *http.Request, t tenant, g directory.Guest, _, admin string) error {
			return c.invites.resend(r, t, g, admin)
		},
		label: templates.ConsoleActionResend, confirm: templates.ConsoleConfirmResend, done: templates.ConsoleDoneResend,
		offered: func(g directory.Guest) bool { return g.Status == directory.Invited && g.InvitedAt != nil },
	},
	"revoke": {
		do: directoryChange((*directory.Directory).Revoke), event: "guest revoked", step: "revoked",
		label: templates.ConsoleActionRevoke, confirm: templates.ConsoleConfirmRevoke, done: templates.ConsoleDoneRevoke,
		offered: func(g directory.Guest) bool { return g.Status != directory.Revoked }, // reset lets them in again
	},
	"reset": {
		do: directoryChange((*directory.Directory).Reset), event: "guest redemption reset", step: "guest_reset",
		label: templates.ConsoleActionReset, confirm: templates.ConsoleConfirmReset, done: templates.ConsoleDoneReset,
		offered: func(directory.Guest) bool { return true },
	},
	"delete": {
		do: directoryChange((*directory.Directory).Delete), event: "guest deleted", step: "guest_deleted",
		label: templates.ConsoleActionDelete, confirm: templates.ConsoleConfirmDelete, done: templates.ConsoleDoneDelete,
		backToList: true, offered: func(directory.Guest) bool { return true },
	},
	deletePasskey: {
		do: func(c *consoleDesk, r *http.Request, t tenant, g directory.Guest, arg, _ string) error {
			id, _ := base64.RawURLEncoding.DecodeString(arg)
			_, err := c.guests.DeletePasskey(r.Context(), t.Key, g.Email, id, c.clock.Now())
			return err
		},
		event: "guest passkey deleted", step: "passkey_deleted",
		label: templates.ConsoleActionDeletePasskey, confirm: templates.ConsoleConfirmDeletePasskey, done: templates.ConsoleDoneDeletePasskey,
		offered: func(directory.Guest) bool { return false },
	},
}

var consoleActionOrder = []string{"resend", "revoke", "reset", "delete"}

// guest is a guest's page (action ""), an action's confirmation (GET) or
// the action itself (POST); arg is the action's object.
func (c *consoleDesk) guest(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant, rawEmail, action, arg string) {
	email, err := flow.ParseAddress(rawEmail)
	if err != nil {
		c.notFound(w, r)
		return
	}
	act, known := consoleActions[action]
	if action != "" && !known {
		c.notFound(w, r)
		return
	}
	if !c.allows(w, r, map[bool]string{true: "GET, HEAD, POST", false: "GET, HEAD"}[known]) {
		return
	}
	g, err := c.guests.Get(r.Context(), t.Key, email)
	if c.failed(w, r, t, email, err) {
		return
	}
	var pk *directory.Passkey
	switch {
	case action == deletePasskey:
		if pk = passkeyOf(g, arg); pk == nil {
			c.failed(w, r, t, email, directory.ErrNoPasskey)
			return
		}
	case action != "" && !act.offered(g):
		// Not one of this guest's actions now (resending to a guest who
		// signed in, revoking one who is out): the page offers the others.
		c.redirect(w, r, c.guestPath(t.ID, email))
		return
	}
	if r.Method == http.MethodPost {
		c.act(w, r, sess, t, g, action, arg)
		return
	}
	data := c.view(sess, "guest")
	v := data.Console
	v.Tenant = c.tenantLink(t.ID)
	words := c.pages.words(r)
	row := c.guestRow(words, t, g)
	v.Guest = &row
	row.InvitedAt, row.InviteExpires = consoleTime(g.InvitedAt), consoleTime(g.InviteExpires)
	row.RedeemedAt, row.SessionsNotBefore = consoleTime(g.RedeemedAt), consoleTime(g.SessionsNotBefore)
	row.Paths, row.AskConsent = g.Paths, g.AskConsent && g.Status == directory.Invited
	for _, pk := range viewOf(g).Passkeys {
		row.Passkeys = append(row.Passkeys, templates.ConsolePasskey{Device: pk.Device, Created: consoleTime(&pk.CreatedAt), LastUsed: consoleTime(pk.LastUsed),
			Delete: row.Link + "/passkeys/" + pk.ID})
	}
	if ex, err := c.service.Explain(r.Context(), t.Key, email); err == nil {
		row.Why, row.Holds = whyWords(words, ex)
		if p := r.URL.Query().Get("path"); p != "" {
			row.PathCheck = pathCheck(words, ex, g, p)
		}
	}
	for _, ev := range guestEvents.of(t.Key, email) {
		row.Events = append(row.Events, templates.ConsoleEvent{At: ev.At.UTC().Format("2006-01-02 15:04:05 UTC"),
			Text: words.Say(templates.Message("console_event_"+ev.Step), nil), Reason: ev.Reason, By: ev.By})
	}
	for _, name := range consoleActionOrder {
		if consoleActions[name].offered(g) {
			row.Actions = append(row.Actions, templates.ConsoleAction{Name: name, Label: consoleActions[name].label, Link: row.Link + "/" + name})
		}
	}
	v.Done, v.DoneCount = doneNotice(r.URL.Query())
	v.DoneEmail = email
	if action != "" {
		data.Console.View = "confirm"
		data.CSRF = c.csrf.token(c.tenant, sess.ID)
		v.Action = templates.ConsoleAction{Name: action, Label: act.label, Link: row.Link + "/" + action, Confirm: act.confirm}
		if pk != nil {
			v.Action.Link, v.Action.Device = row.Link+"/passkeys/"+arg, pk.Device
		}
	}
	c.pages.page(w, r, c.tenant, http.StatusOK, templates.PageConsole, data)
}

// doneNotice is what a page says was just done, from the redirect's done
// (an action, or invite) and n (how many were invited).
func doneNotice(q url.Values) (templates.Message, int) {
	if q.Get("done") == "invite" {
		if n, _ := strconv.Atoi(q.Get("n")); n > 1 {
			return templates.ConsoleDoneInviteMany, n
		}
		return templates.ConsoleDoneInvite, 0
	}
	return consoleActions[q.Get("done")].done, 0
}

// passkeyOf is g's passkey whose id is the base64url id, or nil.
func passkeyOf(g directory.Guest, id string) *directory.Passkey {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil
	}
	for i := range g.Passkeys {
		if string(g.Passkeys[i].ID) == string(raw) {
			return &g.Passkeys[i]
		}
	}
	return nil
}

// act performs a confirmed action: a form of this site with this
// session's token, never another site's post. It is written to the audit
// log with the admin's address and reaches every node as the admin API's
// changes do.
func (c *consoleDesk) act(w http.ResponseWriter, r *http.Request, sess flow.Session, t tenant, g directory.Guest, action, arg string) {
	if !c.confirmed(w, r, sess) {
		return
	}
	act := consoleActions[action]
	if err := act.do(c, r, t, g, arg, sess.Email); c.failed(w, r, t, g.Email, err) {
		return
	}
	if act.event != "" {
		guestChanged(r, c.log.Logger, c.log.audit, act.event, act.step, t.Key, g.Email, zap.String("admin", sess.Email))
	}
	to := c.guestPath(t.ID, g.Email) + "?done=" + action
	if act.backToList {
		to = c.tenantPath(t.ID) + "?done=" + action + "&q=" + url.QueryEscape(g.Email)
	}
	c.redirect(w, r, to)
}

// confirmed reports whether a post is this console session's own form (its
// CSRF token, from this site); otherwise it answers that nothing changed.
func (c *consoleDesk) confirmed(w http.ResponseWriter, r *http.Request, sess flow.Session) bool {
	if err := r.ParseForm(); err != nil || !c.csrf.fromThisBrowser(r, c.tenant, sess.ID, r.PostForm.Get("csrf")) {
		c.pages.errorPage(w, r, c.tenant, http.StatusForbidden, templates.ConsoleStaleFormTitle, templates.ConsoleStaleFormText, nil,
			link{c.root, templates.ConsoleBackHome})
		return false
	}
	return true
}

// failed answers a guest's read or change that did not work: no such
// guest or passkey, an email that could not be queued, or the storage
// failed. It reports whether it answered.
func (c *consoleDesk) failed(w http.ResponseWriter, r *http.Request, t tenant, email string, err error) bool {
	back := link{c.tenantPath(t.ID), templates.ConsoleBackToGuests}
	switch {
	case errors.Is(err, directory.ErrNotFound):
		c.pages.errorPage(w, r, c.tenant, http.StatusNotFound, templates.NotFoundTitle, templates.ConsoleNoSuchGuest, templates.Vars{"Email": email}, back)
	case errors.Is(err, directory.ErrNoPasskey):
		c.pages.errorPage(w, r, c.tenant, http.StatusNotFound, templates.NotFoundTitle, templates.ConsoleNoSuchPasskey, templates.Vars{"Email": email},
			link{c.guestPath(t.ID, email), templates.ConsoleBackToGuest})
	case errors.Is(err, errInviteQueue):
		c.pages.busy(w, r, c.tenant, err, back)
	case err != nil:
		c.pages.internalError(w, r, c.tenant, err)
	default:
		return false
	}
	return true
}

// allows reports whether the request's method is one of allow ("GET,
// HEAD, POST"); otherwise it answers 405.
func (c *consoleDesk) allows(w http.ResponseWriter, r *http.Request, allow string) bool {
	if slices.Contains(strings.Split(allow, ", "), r.Method) {
		return true
	}
	c.pages.notAllowed(w, r, c.tenant, allow)
	return false
}

// whyWords says in the admin's language whether the address may sign in,
// which rule decides, and which limits hold its codes.
func whyWords(words templates.Words, ex flow.Explanation) (why string, holds []string) {
	why = ruleWords(words, ex)
	for _, h := range ex.Holds {
		id := strings.ReplaceAll(strings.TrimSuffix(h.Limit, " limit"), "-", "_")
		holds = append(holds, words.Say(templates.Message("console_hold_"+id), templates.Vars{"Date": consoleTime(&h.Until)}))
	}
	return why, holds
}

// ruleWords is the rule that decides for the address, as a sentence.
func ruleWords(words templates.Words, ex flow.Explanation) string {
	return words.Say(templates.Message("console_why_"+ex.Because), templates.Vars{"Detail": ex.AllowedBy + ex.BlockedBy})
}

// pathCheck answers "can it open this path?": only an address that may
// sign in opens anything, and an invitation with paths opens those alone.
func pathCheck(words templates.Words, ex flow.Explanation, g directory.Guest, p string) templates.ConsolePathCheck {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	out := templates.ConsolePathCheck{Path: p}
	switch {
	case !ex.MayGetCodes:
		out.Answer = ruleWords(words, ex)
	case len(g.Paths) > 0 && !g.Opens(p):
		out.Answer = words.Say(templates.ConsolePathClosed, templates.Vars{"Detail": strings.Join(g.Paths, ", ")})
	default:
		out.Answer = words.Say(templates.ConsolePathOpens, templates.Vars{"Path": p})
	}
	return out
}
