package integration

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
		n := e.smtp.Count("carol@contoso.com")
		carol.requestCode(pathSite, consoleBase, "/admin/", "carol@contoso.com")
		waitMailIdle(t)
		if e.smtp.Count("carol@contoso.com") != n {
			t.Error("a guest who is no admin got a console code")
		}
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

	guestPage := consoleRoot + "t/acme/g/carol@contoso.com"
	expectStatus(t, boss.get(guestPage), http.StatusOK, "carol@contoso.com", `href="/admin/t/acme/g/carol@contoso.com/revoke"`)
	expectStatus(t, boss.get(consoleRoot+"t/acme/g/nobody@contoso.com"), http.StatusNotFound, "nobody@contoso.com")
	expectStatus(t, boss.get(consoleRoot+"t/acme/g/carol@contoso.com/frob"), http.StatusNotFound)

	confirm := boss.get(guestPage + "/revoke")
	expectStatus(t, confirm, http.StatusOK, `method="post"`, `action="/admin/t/acme/g/carol@contoso.com/revoke"`)
	csrf := consoleCSRF(t, confirm)

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
			guestPage[len(consoleRoot):] + "/reset", guestPage[len(consoleRoot):] + "/delete", "t/nowhere/", "nothing/here"}
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
