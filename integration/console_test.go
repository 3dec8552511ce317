package integration

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/integration/oidcprovider"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

const (
	consoleRoot = pathSite + "/admin/"
	consoleBase = "/admin/.email-otp/"
	bossAdmin   = "boss@example.org" // administers every tenant
	acmeAdmin   = "ann@example.org"  // administers acme alone
)

// consoleSite is the path-tenant site with a console at /admin: boss
// administers every tenant, ann acme alone, and the audit log goes to a
// file the test reads.
func (e *env) consoleSite(auditLog, more string) string {
	global := "log audit {\n\t\toutput file " + auditLog + "\n\t\tformat json\n\t\tinclude http.handlers.email_otp.audit\n\t}"
	return globalOptions(e.storage, global) + `http://localhost:9080 {
	email_otp {
		tenant path /t/
		tenants acme globex
		allow *@contoso.com
		console /admin
		admins ` + bossAdmin + `
		admins acme ` + acmeAdmin + `
		` + testLimits + `
		` + e.smtpMailer(0) + `
		` + more + `
	}
	reverse_proxy ` + strings.TrimPrefix(e.backend.URL, "http://") + `
}
`
}

// consoleCSRF is the token in a console page's form.
func consoleCSRF(t *testing.T, r reply) string {
	t.Helper()
	return formValue(t, r.body, "csrf")
}

func TestConsoleThroughCaddy(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e.load(e.consoleSite(auditLog, ""))

	carol, dave := newGuest(t), newGuest(t)
	e.signIn(carol, pathSite, acmeBase, "/t/acme/docs/a", "carol@contoso.com")
	e.signIn(dave, pathSite, "/t/globex/.email-otp/", "/t/globex/docs/b", "dave@contoso.com")
	carol.backendView(pathSite + "/t/acme/docs/a")

	t.Run("a guest's session does not open the console, nor does a non-admin get a code", func(t *testing.T) {
		expectRedirect(t, carol.get(consoleRoot), http.StatusFound)
		e.expectNoCode(carol, pathSite, consoleBase, "/admin/", "carol@contoso.com", "a guest who is no admin")
	})

	boss := newGuest(t)
	if landed := e.signIn(boss, pathSite, consoleBase, "/admin/", bossAdmin); landed != "/admin/" {
		t.Fatalf("the admin landed on %q", landed)
	}
	t.Run("an admin's console session reaches no backend", func(t *testing.T) {
		expectRedirect(t, boss.get(pathSite+"/t/acme/docs/a"), http.StatusFound)
	})

	home := boss.get(consoleRoot)
	expectStatus(t, home, http.StatusOK, bossAdmin, `href="/admin/t/acme/"`, `href="/admin/t/globex/"`, `name="tenant"`)
	expectRedirect(t, boss.get(consoleRoot+"t?tenant=globex"), http.StatusSeeOther)

	list := boss.get(consoleRoot + "t/acme/?q=carol")
	expectStatus(t, list, http.StatusOK, "carol@contoso.com")
	if strings.Contains(list.body, "dave@contoso.com") {
		t.Fatal("acme's list shows globex's guest")
	}
	filtered := boss.get(consoleRoot + "t/acme/?status=revoked")
	expectStatus(t, filtered, http.StatusOK)
	if strings.Contains(filtered.body, "carol@contoso.com") {
		t.Error("the revoked filter shows a redeemed guest")
	}
	expectStatus(t, boss.get(consoleRoot+"t/acme/?signed_in_after=yesterday"), http.StatusBadRequest, `aria-invalid="true"`)
	expectStatus(t, boss.get(consoleRoot+"t/acme/?sort=name"), http.StatusBadRequest, `aria-invalid="true"`)
	expectStatus(t, boss.get(consoleRoot+"t/acme/?sort=last_sign_in"), http.StatusOK, "carol@contoso.com", `<option value="last_sign_in" selected>`)

	guestPage := consoleRoot + "t/acme/g/carol@contoso.com"
	expectStatus(t, boss.get(guestPage), http.StatusOK, "carol@contoso.com", `href="/admin/t/acme/g/carol@contoso.com/revoke"`)
	expectStatus(t, boss.get(consoleRoot+"t/acme/g/nobody@contoso.com"), http.StatusNotFound, "nobody@contoso.com")
	expectStatus(t, boss.get(consoleRoot+"t/acme/g/carol@contoso.com/frob"), http.StatusNotFound)

	// An action the guest's page does not offer (carol signed in: nothing
	// to resend) leads back to the page, and sends nothing.
	if to := expectRedirect(t, boss.get(guestPage+"/resend"), http.StatusSeeOther); to != "/admin/t/acme/g/carol@contoso.com" {
		t.Errorf("resending to a signed-in guest: to %q", to)
	}
	mails := e.smtp.Count("carol@contoso.com")

	confirm := boss.get(guestPage + "/revoke")
	expectStatus(t, confirm, http.StatusOK, `method="post"`, `action="/admin/t/acme/g/carol@contoso.com/revoke"`)
	csrf := consoleCSRF(t, confirm)

	expectRedirect(t, boss.post(guestPage+"/resend", url.Values{"csrf": {csrf}}), http.StatusSeeOther)
	waitMailIdle(t)
	if e.smtp.Count("carol@contoso.com") != mails {
		t.Error("an invitation was resent to a guest who signed in")
	}

	t.Run("a post without this session's token, or from another site, changes nothing", func(t *testing.T) {
		for name, r := range map[string]reply{
			"no token":     boss.post(guestPage+"/revoke", url.Values{}),
			"wrong token":  boss.post(guestPage+"/revoke", url.Values{"csrf": {csrf[:len(csrf)-2] + "xx"}}),
			"other origin": boss.post(guestPage+"/revoke", url.Values{"csrf": {csrf}}, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"),
			"cross-site":   boss.post(guestPage+"/revoke", url.Values{"csrf": {csrf}}, "Sec-Fetch-Site", "cross-site"),
			"guest's token": func() reply {
				// A guest's own sign-in form token is bound to the guest's
				// tenant and session, not to the admin's.
				page := carol.get(pathSite + acmeBase + "signin")
				return boss.post(guestPage+"/revoke", url.Values{"csrf": {formValue(t, page.body, "csrf")}})
			}(),
		} {
			if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "Nothing was changed") {
				t.Errorf("%s: %d, want 403 saying nothing was changed:\n%s", name, r.StatusCode, r.body)
			}
		}
		carol.backendView(pathSite + "/t/acme/docs/a")
	})

	t.Run("a script's fetch reads no console page", func(t *testing.T) {
		for _, mode := range []string{"cors", "same-origin", "no-cors"} {
			r := boss.get(guestPage+"/revoke", "Sec-Fetch-Mode", mode, "Sec-Fetch-Site", "same-origin")
			expectStatus(t, r, http.StatusForbidden)
			if strings.Contains(r.body, `name="csrf"`) {
				t.Errorf("%s: a fetch got the confirmation's token", mode)
			}
		}
		expectStatus(t, boss.get(guestPage+"/revoke", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Site", "same-origin"), http.StatusOK, `name="csrf"`)
	})

	t.Run("a tenant's admin sees that tenant alone", func(t *testing.T) {
		ann := newGuest(t)
		e.signIn(ann, pathSite, consoleBase, "/admin/", acmeAdmin)
		home := ann.get(consoleRoot)
		expectStatus(t, home, http.StatusOK, `href="/admin/t/acme/"`)
		if strings.Contains(home.body, "globex") || strings.Contains(home.body, `name="tenant"`) {
			t.Errorf("a tenant's admin is shown other tenants:\n%s", home.body)
		}
		expectStatus(t, ann.get(consoleRoot+"t/acme/"), http.StatusOK, "carol@contoso.com")
		other := ann.get(consoleRoot + "t/globex/")
		missing := ann.get(consoleRoot + "t/initech/")
		expectStatus(t, other, http.StatusForbidden)
		expectStatus(t, missing, http.StatusForbidden)
		if other.body != missing.body {
			t.Error("a tenant the admin may not see and one that does not exist answer differently")
		}
		for _, u := range []string{"t/globex/g/dave@contoso.com", "t/globex/g/dave@contoso.com/revoke", "t/globex/?q=dave"} {
			r := ann.get(consoleRoot + u)
			expectStatus(t, r, http.StatusForbidden)
			if strings.Contains(r.body, "dave@contoso.com") {
				t.Errorf("%s: the 403 page shows the guest", u)
			}
		}
		// Her token is good for her session; the tenant is still not hers.
		token := consoleCSRF(t, ann.get(guestPage+"/revoke"))
		expectStatus(t, ann.post(consoleRoot+"t/globex/g/dave@contoso.com/revoke", url.Values{"csrf": {token}}), http.StatusForbidden)
		dave.backendView(pathSite + "/t/globex/docs/b")
	})

	t.Run("every console page shows words in every language", func(t *testing.T) {
		idRE := regexp.MustCompile(`console_[a-z_]+|\{\{|\[\[|<no value>`)
		pages := []string{"", "t/acme/", "t/acme/?q=zzz", "t/acme/?signed_in_after=bad", guestPage[len(consoleRoot):], guestPage[len(consoleRoot):] + "/revoke",
			guestPage[len(consoleRoot):] + "/reset", guestPage[len(consoleRoot):] + "/delete", guestPage[len(consoleRoot):] + "?path=/x",
			"t/acme/invite", "t/acme/overview", "t/nowhere/", "nothing/here"}
		for _, lang := range []string{"en", "de", "fr", "es", "ja", "ar"} {
			for _, p := range pages {
				r := boss.get(consoleRoot+p, "Accept-Language", lang)
				if m := idRE.FindString(r.body); m != "" {
					t.Errorf("%s %s: %q on the page", lang, p, m)
				}
				if !strings.Contains(r.body, `lang="`+lang+`"`) {
					t.Errorf("%s %s: not in %s", lang, p, lang)
				}
			}
		}
	})

	// Revoke, confirmed: the guest's next request is refused, and the audit
	// log names the admin.
	done := expectRedirect(t, boss.post(guestPage+"/revoke", url.Values{"csrf": {csrf}}, "Origin", pathSite), http.StatusSeeOther)
	if done != "/admin/t/acme/g/carol@contoso.com?done=revoke" {
		t.Fatalf("after revoking: %q", done)
	}
	revoked := boss.get(pathSite + done)
	expectStatus(t, revoked, http.StatusOK, "carol@contoso.com</bdi></strong> is revoked", "<dd>Revoked</dd>", `href="/admin/t/acme/g/carol@contoso.com/reset"`)
	if strings.Contains(revoked.body, `carol@contoso.com/revoke"`) {
		t.Error("a revoked guest is offered revoke again")
	}
	expectRedirect(t, carol.get(pathSite+"/t/acme/docs/a"), http.StatusFound)
	expectStatus(t, boss.get(consoleRoot+"t/acme/?status=revoked"), http.StatusOK, "carol@contoso.com")
	waitForLine(t, auditLog, `"event":"revoked"`, `"admin":"`+bossAdmin+`"`, `"email":"carol@contoso.com"`)

	// Delete returns to the list, which no longer shows the guest.
	del := boss.get(guestPage + "/delete")
	back := expectRedirect(t, boss.post(guestPage+"/delete", url.Values{"csrf": {consoleCSRF(t, del)}}), http.StatusSeeOther)
	after := boss.get(pathSite + back)
	expectStatus(t, after, http.StatusOK, "carol@contoso.com</bdi></strong> was deleted")
	if strings.Contains(after.body, `href="/admin/t/acme/g/carol@contoso.com"`) {
		t.Error("the deleted guest is still listed")
	}
	waitForLine(t, auditLog, `"event":"guest_deleted"`, `"admin":"`+bossAdmin+`"`)
	if status := adminAPI(t, http.MethodGet, "path:acme/carol@contoso.com", nil, nil); status != http.StatusNotFound {
		t.Errorf("the admin API still has the deleted guest: %d", status)
	}

	// The admin API's changes reach the same audit log as the console's.
	if status := adminAPI(t, http.MethodPost, "path:globex/dave@contoso.com/revoke", nil, nil); status != http.StatusOK {
		t.Fatalf("revoke through the admin API: %d", status)
	}
	waitForLine(t, auditLog, `"event":"revoked"`, `"tenant":"globex"`, `"email":"dave@contoso.com"`)
	expectRedirect(t, dave.get(pathSite+"/t/globex/docs/b"), http.StatusFound)

	t.Run("an admin taken off the list is out at the next request", func(t *testing.T) {
		e.load(strings.Replace(e.consoleSite(auditLog, ""), "admins "+bossAdmin, "admins nobody@example.org", 1))
		for _, u := range []string{"", "t/acme/", "t/globex/g/dave@contoso.com"} {
			r := boss.get(consoleRoot + u)
			expectStatus(t, r, http.StatusForbidden)
			if strings.Contains(r.body, "acme") || strings.Contains(r.body, "dave@contoso.com") {
				t.Errorf("%s: a former admin's 403 page shows what is there:\n%s", u, r.body)
			}
		}
	})
}

// about reports whether d is want, give or take a second (the moments a
// request takes).
func about(d, want time.Duration) bool { return d > want-time.Second && d < want+time.Second }

// waitForLine waits for a line of the log file holding every part.
func waitForLine(t *testing.T, file string, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		for _, line := range strings.Split(string(b), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line in %s with %q:\n%s", file, parts, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsoleInvitesExplainsAndDeletesPasskeys(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e.load(e.consoleSite(auditLog, ""))
	boss := newGuest(t)
	e.signIn(boss, pathSite, consoleBase, "/admin/", bossAdmin)
	expectStatus(t, boss.get(consoleRoot+"t/acme/"), http.StatusOK, `href="/admin/t/acme/invite"`)

	invite := consoleRoot + "t/acme/invite"
	form := boss.get(invite)
	expectStatus(t, form, http.StatusOK, `name="emails"`, `value="http://localhost:9080/t/acme/"`)
	csrf := consoleCSRF(t, form)
	post := func(fields url.Values) reply {
		fields.Set("csrf", csrf)
		return boss.post(invite, fields, "Origin", pathSite)
	}

	t.Run("a form with a mistake invites nobody and keeps what was typed", func(t *testing.T) {
		for name, c := range map[string]struct {
			fields url.Values
			says   string
		}{
			"a bad address":         {url.Values{"emails": {"nell@outside.example, not-an-address"}, "link": {pathSite + "/t/acme/"}, "send": {"on"}}, "not-an-address"},
			"no address":            {url.Values{"emails": {" , "}, "link": {pathSite + "/t/acme/"}, "send": {"on"}}, "at least one address"},
			"another tenant's link": {url.Values{"emails": {"nell@outside.example"}, "link": {pathSite + "/t/globex/x"}, "send": {"on"}}, "a page of this tenant"},
			"a bad path":            {url.Values{"emails": {"nell@outside.example"}, "paths": {"reports"}}, "starts with /"},
		} {
			r := post(c.fields)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, c.says) || !strings.Contains(r.body, "nell@outside.example") && name != "no address" {
				t.Errorf("%s: %d, want 400 saying %q and keeping the addresses:\n%s", name, r.StatusCode, c.says, r.body)
			}
		}
		if status := adminAPI(t, http.MethodGet, "path:acme/nell@outside.example", nil, nil); status != http.StatusNotFound {
			t.Errorf("a refused form wrote a guest: %d", status)
		}
		waitMailIdle(t)
		if n := e.smtp.Count("nell@outside.example"); n != 0 {
			t.Errorf("a refused form sent %d emails", n)
		}
	})

	// Two at once, opening /reports/ only, asked to agree first, in German.
	done := expectRedirect(t, post(url.Values{"emails": {"Nell@Outside.example\nomar@outside.example; nell@outside.example"},
		"link": {pathSite + "/t/acme/reports/q3.pdf"}, "paths": {"/reports/"}, "expires": {"7d"}, "ask_consent": {"on"}, "send": {"on"}, "language": {"de"}}), http.StatusSeeOther)
	if done != "/admin/t/acme/?done=invite&n=2" {
		t.Fatalf("after inviting: %q", done)
	}
	expectStatus(t, boss.get(pathSite+done), http.StatusOK, "2 guests were invited.", "nell@outside.example", "omar@outside.example")
	mail := e.smtp.Wait(t, "nell@outside.example", 1, 10*time.Second)
	if subject := decodeHeader(mail.Header.Get("Subject")); !strings.Contains(subject, "eingeladen") || !strings.Contains(mail.Text, bossAdmin) {
		t.Errorf("the invitation is not German or does not name the admin:\n%s\n%s", subject, mail.Text)
	}
	var nell directory.Guest
	adminAPI(t, http.MethodGet, "path:acme/nell@outside.example", nil, &nell)
	if nell.Status != directory.Invited || !nell.AskConsent || len(nell.Paths) != 1 || nell.Paths[0] != "/reports/" || nell.InvitedBy != bossAdmin ||
		nell.InviteExpires == nil || !about(nell.InviteExpires.Sub(*nell.InvitedAt), 7*24*time.Hour) {
		t.Errorf("the directory after the console's invitation: %+v", nell)
	}
	waitForLine(t, auditLog, `"event":"invited"`, `"admin":"`+bossAdmin+`"`, `"email":"omar@outside.example"`)

	// Nell follows the link: asked to agree before her first sign-in, though
	// the gateway's consent is off.
	g := newGuest(t)
	page := g.get(linkRE.FindString(mail.Text))
	expectStatus(t, page, http.StatusOK, `name="email"`)
	expectRedirect(t, g.post(pathSite+acmeBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"nell@outside.example"}, "rd": {formValue(t, page.body, "rd")}}), http.StatusSeeOther)
	v := g.get(pathSite + acmeBase + "verify")
	code := codeIn(t, e.smtp.Wait(t, "nell@outside.example", 2, 10*time.Second).Text)
	if to := expectRedirect(t, g.post(pathSite+acmeBase+"verify", url.Values{"csrf": {formValue(t, v.body, "csrf")}, "code": {code}}), http.StatusSeeOther); to != acmeBase+"consent" {
		t.Errorf("the first sign-in of a guest whose invitation asks consent went to %q", to)
	}

	t.Run("the overview counts the tenant's own steps", func(t *testing.T) {
		overview := boss.get(consoleRoot + "t/acme/overview")
		expectStatus(t, overview, http.StatusOK, "Sign-ins to acme", "<svg", "Delivered, ")
		for label, n := range map[string]string{"Codes asked for": "1", "Codes sent": "1", "Signed in with a passkey": "0"} {
			row := regexp.MustCompile(`<th scope="row">` + label + `</th>\s*<td class="n"[^>]*>(\d+)</td><td class="bar">.*?</td>\s*<td class="n"[^>]*>(\d+)</td>`).FindStringSubmatch(overview.body)
			if row == nil || row[1] != n || row[2] != n {
				t.Errorf("%s: %q, want %s in the last day and week", label, row, n)
			}
		}
		globex := boss.get(consoleRoot + "t/globex/overview")
		if !regexp.MustCompile(`<th scope="row">Codes sent</th>\s*<td class="n"[^>]*>0</td>`).MatchString(globex.body) {
			t.Error("another tenant's overview counts acme's codes")
		}
	})

	t.Run("a tenant's admin sees whether mail goes out, not the mailer's words", func(t *testing.T) {
		// The mailer's last answer is the gateway's: here about globex's
		// guest, which acme's admin has no business reading.
		ann := newGuest(t)
		e.signIn(ann, pathSite, consoleBase, "/admin/", acmeAdmin)
		e.smtp.Refuse(permFail)
		newGuest(t).requestCode(pathSite, "/t/globex/.email-otp/", "/t/globex/x", "victim@contoso.com")
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(boss.get(consoleRoot+"t/acme/overview").body, "no such mailbox"); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the failed delivery never reached the gateway-wide admin's overview")
			}
		}
		r := ann.get(consoleRoot + "t/acme/overview")
		expectStatus(t, r, http.StatusOK, "Failed, ")
		if strings.Contains(r.body, "no such mailbox") || strings.Contains(r.body, "victim@") {
			t.Errorf("a tenant's admin reads the mailer's answer about another tenant's guest:\n%s", r.body)
		}
	})

	t.Run("the guest's page says why, and answers for a path", func(t *testing.T) {
		nellPage := consoleRoot + "t/acme/g/nell@outside.example"
		expectStatus(t, boss.get(nellPage), http.StatusOK, "Yes: it is invited.", "Asked to agree before the first sign-in", "Recent events", "Invited", "by <strong><bdi>"+bossAdmin, "Signed in with a code")
		expectStatus(t, boss.get(nellPage+"?path=/finance/x"), http.StatusOK, "No: its invitation opens only /reports/.")
		expectStatus(t, boss.get(nellPage+"?path=/reports/q3.pdf"), http.StatusOK, "Yes: it may open /reports/q3.pdf.")
	})

	t.Run("an invitation is sent again", func(t *testing.T) {
		omarPage := consoleRoot + "t/acme/g/omar@outside.example"
		expectStatus(t, boss.get(omarPage), http.StatusOK, `href="/admin/t/acme/g/omar@outside.example/resend"`)
		confirm := boss.get(omarPage + "/resend")
		expectStatus(t, confirm, http.StatusOK, "Send <strong><bdi>omar@outside.example</bdi></strong> their invitation again?")
		expectRedirect(t, boss.post(omarPage+"/resend", url.Values{"csrf": {consoleCSRF(t, confirm)}}), http.StatusSeeOther)
		again := e.smtp.Wait(t, "omar@outside.example", 2, 10*time.Second)
		if !strings.Contains(again.Text, "/t/acme/.email-otp/signin?") {
			t.Errorf("the resent invitation has no sign-in link:\n%s", again.Text)
		}
		var omar directory.Guest
		adminAPI(t, http.MethodGet, "path:acme/omar@outside.example", nil, &omar)
		if !omar.AskConsent || len(omar.Paths) != 1 || omar.InvitedBy != bossAdmin || !about(omar.InviteExpires.Sub(*omar.InvitedAt), 7*24*time.Hour) {
			t.Errorf("a resent invitation changed what it grants: %+v", omar)
		}
	})

	t.Run("a passkey is deleted, and no other", func(t *testing.T) {
		// Pam's record is written by another node (as one sharing the
		// storage would) before this one ever read it.
		now := time.Now()
		other := directory.New(&certmagic.FileStorage{Path: e.storage}, 10, time.Minute)
		defer other.Close()
		if _, err := other.Update(context.Background(), "path:acme", "pam@contoso.com", now, func(g *directory.Guest, _ bool) (bool, error) {
			g.Status, g.Source = directory.Redeemed, directory.SourcePasskey
			g.Passkeys = []directory.Passkey{{ID: []byte("pk-phone"), Device: "Chrome on Android", CreatedAt: now}, {ID: []byte("pk-laptop"), Device: "Safari on macOS", CreatedAt: now}}
			return false, nil
		}); err != nil {
			t.Fatal(err)
		}
		pamPage := consoleRoot + "t/acme/g/pam@contoso.com"
		phone := pamPage + "/passkeys/" + base64.RawURLEncoding.EncodeToString([]byte("pk-phone"))
		expectStatus(t, boss.get(pamPage), http.StatusOK, "Chrome on Android", "Safari on macOS", `href="`+strings.TrimPrefix(phone, pathSite)+`"`)
		expectStatus(t, boss.get(pamPage+"/passkeys/bm9uZQ"), http.StatusNotFound, "no such passkey")
		confirm := boss.get(phone)
		expectStatus(t, confirm, http.StatusOK, "Delete the passkey <bdi>Chrome on Android</bdi>")
		expectStatus(t, boss.post(phone, url.Values{}), http.StatusForbidden, "Nothing was changed")
		back := expectRedirect(t, boss.post(phone, url.Values{"csrf": {consoleCSRF(t, confirm)}}), http.StatusSeeOther)
		after := boss.get(pathSite + back)
		expectStatus(t, after, http.StatusOK, "A passkey of <strong><bdi>pam@contoso.com</bdi></strong> was deleted.", "Safari on macOS")
		if strings.Contains(after.body, "Chrome on Android") {
			t.Error("the deleted passkey is still shown")
		}
		var left passkeyViews
		adminAPI(t, http.MethodGet, "path:acme/pam@contoso.com/passkeys", nil, &left)
		if len(left) != 1 || left[0].Device != "Safari on macOS" {
			t.Errorf("passkeys after the deletion: %+v", left)
		}
		waitForLine(t, auditLog, `"event":"passkey_deleted"`, `"admin":"`+bossAdmin+`"`, `"email":"pam@contoso.com"`)
	})
}

// An admin whose organisation has an identity provider signs in to the
// console there, as guests of that domain do, and gets no mail.
func TestConsoleAdminSignsInAtTheirProvider(t *testing.T) {
	admin := "ann@" + federatedDomain
	idp := oidcprovider.Start(t, "gateway", "s3cret", []string{pathSite + consoleBase + "oidc/callback"},
		oidcprovider.User{Username: "ann", Email: admin, EmailVerified: true})
	t.Setenv("TEST_OIDC_SECRET", "s3cret")
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.consoleSite(filepath.Join(t.TempDir(), "audit.log"), federationBlock(idp.Issuer, "code")+"\n\t\tadmins acme "+admin))
	g := newGuest(t)
	if landed := expectRedirect(t, viaProvider(t, g, pathSite, consoleBase, "/admin/", admin, "ann"), http.StatusSeeOther); landed != "/admin/" {
		t.Fatalf("the admin landed on %q", landed)
	}
	expectStatus(t, g.get(consoleRoot), http.StatusOK, `href="/admin/t/acme/"`, admin)
	expectStatus(t, g.get(consoleRoot+"t/globex/"), http.StatusForbidden)
	if n := e.smtp.Count(admin); n != 0 {
		t.Errorf("%d mails went to an admin who signs in at their provider", n)
	}
}
