package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

const adminURL = "http://localhost:2999/email-otp/guests/"

// adminAPI sends a request to the admin API and decodes the JSON answer.
func adminAPI(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, adminURL+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, data)
		}
	}
	if e, ok := out.(*apiErr); ok {
		_ = json.Unmarshal(data, e)
	}
	return resp.StatusCode
}

// guestList decodes a page of the admin API's guest list into its guests.
type guestList []directory.Guest

func (l *guestList) UnmarshalJSON(b []byte) error {
	var page struct {
		Guests []directory.Guest `json:"guests"`
	}
	err := json.Unmarshal(b, &page)
	*l = page.Guests
	return err
}

type apiErr struct {
	Error string `json:"error"`
}

type invited struct {
	directory.Guest
	Link string `json:"link"`
}

func TestInvitationFromMailToDocument(t *testing.T) {
	e := start(t, gatewayOptions{})
	var inv invited
	status := adminAPI(t, http.MethodPost, "contoso.localhost", map[string]any{
		"email": "Guest@Outside.example", "url": contoso + "/reports/q3.pdf?v=2",
		"invited_by": "alice@contoso.com", "expires_in": "7d", "paths": []string{"/reports/"},
	}, &inv)
	if status != http.StatusCreated || inv.Status != directory.Invited || inv.Email != "guest@outside.example" || inv.InviteExpires == nil {
		t.Fatalf("invite: %d %+v", status, inv)
	}
	mail := e.smtp.Wait(t, "guest@outside.example", 1, 10*time.Second)
	if !strings.Contains(decodeHeader(mail.Header.Get("Subject")), "invited to contoso.localhost") || !strings.Contains(mail.Text, "alice@contoso.com invited you") {
		t.Errorf("invitation email:\n%s\n%s", mail.Header.Get("Subject"), mail.Text)
	}
	link := linkRE.FindString(mail.Text)
	if link == "" || link != inv.Link {
		t.Fatalf("link in the email %q, API said %q", link, inv.Link)
	}

	// The guest follows the link: the sign-in page knows the address.
	g := newGuest(t)
	page := g.get(link)
	expectStatus(t, page, http.StatusOK)
	if formValue(t, page.body, "email") != "guest@outside.example" || formValue(t, page.body, "rd") != "/reports/q3.pdf?v=2" {
		t.Fatalf("sign-in page from the link: email %q rd %q", formValue(t, page.body, "email"), formValue(t, page.body, "rd"))
	}
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{
		"csrf": {formValue(t, page.body, "csrf")}, "email": {"guest@outside.example"}, "rd": {"/reports/q3.pdf?v=2"},
	}), http.StatusSeeOther)
	v := g.get(contoso + hostBase + "verify")
	code := codeIn(t, e.smtp.Wait(t, "guest@outside.example", 2, 10*time.Second).Text)
	landed := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {formValue(t, v.body, "csrf")}, "code": {code}}), http.StatusSeeOther)
	if landed != "/reports/q3.pdf?v=2" {
		t.Errorf("landed on %q", landed)
	}
	seen := g.backendView(contoso + landed)
	if first(seen.Headers["X-Auth-Guest-Status"]) != "redeemed" {
		t.Errorf("status header %v", seen.Headers["X-Auth-Guest-Status"])
	}
	var got directory.Guest
	adminAPI(t, http.MethodGet, "contoso.localhost/guest@outside.example", nil, &got)
	if got.Status != directory.Redeemed || got.RedeemedAt == nil || got.LastSignIn == nil || got.InvitedBy != "alice@contoso.com" {
		t.Errorf("directory after redemption: %+v", got)
	}
	// The invitation opens /reports/ only.
	r := g.get(contoso + "/finance/budget.xlsx")
	expectStatus(t, r, http.StatusForbidden, "guest@outside.example", "Use another address")
	// Another tenant knows nothing of it.
	expectRedirect(t, g.get(fabrikam+"/reports/q3.pdf"), http.StatusFound)
}

var linkRE = regexp.MustCompile(`https?://\S+/\.email-otp/signin\?\S+`)

func TestRevokeResetDeleteEndSessions(t *testing.T) {
	e := start(t, gatewayOptions{})
	g := newGuest(t)
	e.signIn(g, contoso, hostBase, "/", "rob@contoso.com")
	var list []directory.Guest
	adminAPI(t, http.MethodGet, "contoso.localhost", nil, (*guestList)(&list))
	if len(list) != 1 || list[0].Email != "rob@contoso.com" || list[0].Status != directory.Redeemed || list[0].InvitedAt != nil {
		t.Fatalf("a sign-in through the allow list records the guest: %+v", list)
	}

	// Reset: the session ends; the next sign-in redeems again.
	before := *list[0].RedeemedAt
	if status := adminAPI(t, http.MethodPost, "contoso.localhost/rob@contoso.com/reset", nil, nil); status != http.StatusOK {
		t.Fatalf("reset: %d", status)
	}
	expectRedirect(t, g.get(contoso+"/x"), http.StatusFound)
	// Sessions carry whole seconds, so the reset voids the rest of its
	// second; a sign-in counts once that cut has passed.
	var reset directory.Guest
	adminAPI(t, http.MethodGet, "contoso.localhost/rob@contoso.com", nil, &reset)
	if reset.SessionsNotBefore == nil || reset.RedeemedAt != nil {
		t.Fatalf("after reset: %+v", reset)
	}
	waitPast(*reset.SessionsNotBefore)
	e.signIn(g, contoso, hostBase, "/", "rob@contoso.com")
	var got directory.Guest
	adminAPI(t, http.MethodGet, "contoso.localhost/rob@contoso.com", nil, &got)
	if got.Status != directory.Redeemed || !got.RedeemedAt.After(before) {
		t.Errorf("after reset and sign-in: %+v (redeemed before at %v)", got, before)
	}
	g.backendView(contoso + "/x")

	// Revoke: refused at the next request, and no more codes.
	if status := adminAPI(t, http.MethodPost, "contoso.localhost/rob@contoso.com/revoke", nil, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	expectRedirect(t, g.get(contoso+"/x"), http.StatusFound)
	e.expectNoCode(g, contoso, hostBase, "/", "rob@contoso.com", "a revoked guest")

	// Delete: another guest's session ends too.
	h := newGuest(t)
	e.signIn(h, contoso, hostBase, "/", "sue@contoso.com")
	if status := adminAPI(t, http.MethodDelete, "contoso.localhost/sue@contoso.com", nil, nil); status != http.StatusOK {
		t.Fatalf("delete: %d", status)
	}
	expectRedirect(t, h.get(contoso+"/x"), http.StatusFound)
	if status := adminAPI(t, http.MethodGet, "contoso.localhost/sue@contoso.com", nil, nil); status != http.StatusNotFound {
		t.Errorf("deleted guest: %d", status)
	}
}

func TestAdminAPIRefusesBadInputWithoutWriting(t *testing.T) {
	start(t, gatewayOptions{})
	cases := map[string]struct {
		body any
		want string
	}{
		"bad address":    {map[string]any{"email": "Bob <bob@x.example>", "url": contoso + "/"}, "email"},
		"no url":         {map[string]any{"email": "bob@x.example"}, "url"},
		"foreign url":    {map[string]any{"email": "bob@x.example", "url": "https://evil.example/"}, "url"},
		"other tenant":   {map[string]any{"email": "bob@x.example", "url": fabrikam + "/"}, "url"},
		"javascript url": {map[string]any{"email": "bob@x.example", "url": "javascript:alert(1)"}, "url"},
		"bad path":       {map[string]any{"email": "bob@x.example", "url": contoso + "/", "paths": []string{"reports"}}, "paths"},
		"bad expiry":     {map[string]any{"email": "bob@x.example", "url": contoso + "/", "expires_in": "soon"}, "expires_in"},
		"unknown field":  {map[string]any{"email": "bob@x.example", "url": contoso + "/", "admin": true}, "admin"},
		"not JSON":       {"just a string", "invitation"},
	}
	for name, c := range cases {
		var e apiErr
		if status := adminAPI(t, http.MethodPost, "contoso.localhost", c.body, &e); status != http.StatusBadRequest || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %q, want 400 naming %q", name, status, e.Error, c.want)
		}
	}
	for path, want := range map[string]int{
		"contoso.localhost/not-an-address":        http.StatusBadRequest,
		"contoso.localhost/nobody@x.example":      http.StatusNotFound,
		"contoso.localhost/nobody@x.example/frob": http.StatusMethodNotAllowed,
	} {
		if status := adminAPI(t, http.MethodGet, path, nil, nil); status != want {
			t.Errorf("GET %s: %d, want %d", path, status, want)
		}
	}
	if status := adminAPI(t, http.MethodPost, "contoso.localhost/nobody@x.example/revoke", nil, nil); status != http.StatusNotFound {
		t.Errorf("revoking nobody: %d", status)
	}
	var list []directory.Guest
	adminAPI(t, http.MethodGet, "contoso.localhost", nil, (*guestList)(&list))
	if len(list) != 0 {
		t.Errorf("refused requests wrote guests: %+v", list)
	}
}

func TestInviteWithFullQueueWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.smtp = startSlowSink(t)
	e.load(gatewayOptions{extra: "delivery {\n\t\t\tworkers 1\n\t\t\tcapacity 1\n\t\t}"})
	body := func(email string) map[string]any { return map[string]any{"email": email, "url": contoso + "/"} }
	if status := adminAPI(t, http.MethodPost, "contoso.localhost", body("one@x.example"), nil); status != http.StatusCreated {
		t.Fatalf("first invite: %d", status)
	}
	var ae apiErr
	if status := adminAPI(t, http.MethodPost, "contoso.localhost", body("two@x.example"), &ae); status != http.StatusServiceUnavailable || !strings.Contains(ae.Error, "nothing was changed") {
		t.Fatalf("second invite with a full queue: %d %q", status, ae.Error)
	}
	if status := adminAPI(t, http.MethodGet, "contoso.localhost/two@x.example", nil, nil); status != http.StatusNotFound {
		t.Errorf("the refused invitation was written: %d", status)
	}
	e.smtp.Wait(t, "one@x.example", 1, 10*time.Second)
}

func TestDirectoryPersistsInCaddysStorage(t *testing.T) {
	e := start(t, gatewayOptions{})
	adminAPI(t, http.MethodPost, "contoso.localhost", map[string]any{"email": "kept@x.example", "url": contoso + "/", "send_email": false}, nil)
	e.load(e.bare())
	e.load(gatewayOptions{})
	// Read the storage itself, not this process's cache.
	g, err := directory.New(&certmagic.FileStorage{Path: e.storage}, 10, time.Minute).Get(context.Background(), "contoso.localhost", "kept@x.example")
	if err != nil || g.Status != directory.Invited {
		t.Fatalf("after restart: %+v %v", g, err)
	}
	var list []directory.Guest
	adminAPI(t, http.MethodGet, "contoso.localhost", nil, (*guestList)(&list))
	if len(list) != 1 {
		t.Errorf("list after restart: %+v", list)
	}
}

func TestRouteLevelPolicy(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.contosoSite("allow *@contoso.com", `route /finance/* {
		email_otp {
			allow cfo@contoso.com
		}
	}`))
	staff, cfo := newGuest(t), newGuest(t)
	e.signIn(staff, contoso, hostBase, "/finance/q3.xlsx", "staff@contoso.com")
	e.signIn(cfo, contoso, hostBase, "/finance/q3.xlsx", "cfo@contoso.com")
	staff.backendView(contoso + "/wiki/")
	r := staff.get(contoso + "/finance/q3.xlsx")
	expectStatus(t, r, http.StatusForbidden, "staff@contoso.com", "Use another address")
	if r.Header.Get("Location") != "" {
		t.Error("the 403 redirects")
	}
	cfo.backendView(contoso + "/finance/q3.xlsx")
	// "Use another address" leads to the sign-in page for the same link, empty.
	page := staff.get(contoso + hostBase + "signin?rd=" + url.QueryEscape("/finance/q3.xlsx") + "&change=1")
	if formValue(t, page.body, "email") != "" || formValue(t, page.body, "rd") != "/finance/q3.xlsx" {
		t.Error("use another address does not keep the link or clear the address")
	}
}

func TestConsentBeforeFirstRedemption(t *testing.T) {
	e := start(t, gatewayOptions{extra: "consent"})
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/doc", "tia@contoso.com")
	code := codeIn(t, e.smtp.Wait(t, "tia@contoso.com", 1, 10*time.Second).Text)
	loc := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if loc != hostBase+"consent" {
		t.Fatalf("after the code: %q, want the consent page", loc)
	}
	page := g.get(contoso + loc)
	expectStatus(t, page, http.StatusOK, "will see your email address", "tia@contoso.com")
	// Cancel: no session, not redeemed.
	expectStatus(t, g.post(contoso+hostBase+"consent", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "decision": {"cancel"}}), http.StatusOK, "You did not sign in")
	expectRedirect(t, g.get(contoso+"/doc"), http.StatusFound)
	if status := adminAPI(t, http.MethodGet, "contoso.localhost/tia@contoso.com", nil, nil); status != http.StatusNotFound {
		t.Errorf("a cancelled consent recorded the guest: %d", status)
	}
	// Accept: signed in, redeemed, landed on the link.
	csrf = g.requestCode(contoso, hostBase, "/doc", "tia@contoso.com")
	code = codeIn(t, e.smtp.Wait(t, "tia@contoso.com", 2, 10*time.Second).Text)
	expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	page = g.get(contoso + hostBase + "consent")
	landed := expectRedirect(t, g.post(contoso+hostBase+"consent", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "decision": {"accept"}}), http.StatusSeeOther)
	if landed != "/doc" {
		t.Errorf("landed on %q", landed)
	}
	g.backendView(contoso + "/doc")
	// A redeemed guest is not asked again.
	g.signOut(contoso, hostBase)
	if loc := e.signIn(g, contoso, hostBase, "/doc", "tia@contoso.com"); loc != "/doc" {
		t.Errorf("second sign-in went to %q", loc)
	}
}

func TestInviteOnlyAdmitsInvitedGuestsAlone(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	e.load(e.contosoSite("invite_only", ""))
	g := newGuest(t)
	g.requestCode(contoso, hostBase, "/", "walk-in@contoso.com")
	adminAPI(t, http.MethodPost, "contoso.localhost", map[string]any{"email": "vip@x.example", "url": contoso + "/", "send_email": false}, nil)
	e.signIn(newGuest(t), contoso, hostBase, "/", "vip@x.example")
	if n := e.smtp.Count("walk-in@contoso.com"); n != 0 {
		t.Errorf("an uninvited address got %d mails", n)
	}
}

// TestCLI builds Caddy with this module, as xcaddy would, and drives the
// directory with `caddy email-otp` against the running server.
func TestCLI(t *testing.T) {
	e := start(t, gatewayOptions{})
	bin := buildCaddy(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"email-otp"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	common := []string{"--address", "localhost:2999", "--tenant", "contoso.localhost"}
	with := func(args ...string) []string { return append(args, common...) }

	// docs/access.md's walk-through: invite, the guest signs in from the email, list, revoke.
	out, err := run(with("invite", "--email", "cli@x.example", "--url", contoso+"/docs/plan.pdf", "--invited-by", "ops@contoso.com", "--expires", "2d", "--path", "/docs/")...)
	if err != nil || !strings.Contains(out, `"status": "invited"`) {
		t.Fatalf("invite: %v\n%s", err, out)
	}
	link := linkRE.FindString(e.smtp.Wait(t, "cli@x.example", 1, 10*time.Second).Text)
	g := newGuest(t)
	page := g.get(link)
	expectRedirect(t, g.post(contoso+hostBase+"send", url.Values{
		"csrf": {formValue(t, page.body, "csrf")}, "email": {formValue(t, page.body, "email")}, "rd": {formValue(t, page.body, "rd")},
	}), http.StatusSeeOther)
	v := g.get(contoso + hostBase + "verify")
	code := codeIn(t, e.smtp.Wait(t, "cli@x.example", 2, 10*time.Second).Text)
	landed := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {formValue(t, v.body, "csrf")}, "code": {code}}), http.StatusSeeOther)
	if landed != "/docs/plan.pdf" {
		t.Errorf("landed on %q", landed)
	}
	g.backendView(contoso + landed)
	session := g.get(contoso+hostBase+"session", "Accept", "application/json")
	expectStatus(t, session, http.StatusOK, `"status":"redeemed"`)

	out, err = run(with("list")...)
	if err != nil || !strings.Contains(out, "cli@x.example") || !strings.Contains(out, "redeemed") || !strings.Contains(out, "ops@contoso.com") || !strings.Contains(out, "/docs/") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := run(with("revoke", "--email", "cli@x.example")...); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	expectRedirect(t, g.get(contoso+landed), http.StatusFound)

	if out, err := run(with("reset", "--email", "cli@x.example")...); err != nil {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	out, _ = run(with("get", "--email", "cli@x.example")...)
	if !strings.Contains(out, `"status": "invited"`) {
		t.Errorf("after reset: %s", out)
	}
	if out, err := run(with("delete", "--email", "cli@x.example")...); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	out, err = run(with("get", "--email", "cli@x.example")...)
	if err == nil || !strings.Contains(out, "404") {
		t.Errorf("get after delete: %v\n%s", err, out)
	}
	out, err = run(with("invite", "--email", "not an address", "--no-email")...)
	if err == nil || !strings.Contains(out, "400") {
		t.Errorf("a bad address: %v\n%s", err, out)
	}
	out, err = run("list", "--address", "localhost:2999")
	if err == nil || !strings.Contains(out, "--tenant is required") {
		t.Errorf("no tenant: %v\n%s", err, out)
	}
}

var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// buildCaddy builds integration/testcaddy once per test run.
func buildCaddy(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "email-otp-caddy-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "github.com/otpgate/caddy-email-otp/integration/testcaddy")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("building Caddy with the module: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// The admin API pages the guest list in address order with a cursor, and
// searches and filters it; bad parameters are refused with a reason.
func TestAdminListPagesSearchesAndFilters(t *testing.T) {
	e := start(t, gatewayOptions{})
	for _, email := range []string{"a@contoso.com", "b@contoso.com", "c@x.partner.org", "d@contoso.com"} {
		e.signIn(newGuest(t), contoso, hostBase, "/", email)
	}
	type page struct {
		Guests []directory.Guest `json:"guests"`
		Next   string            `json:"next"`
	}
	var p page
	adminAPI(t, http.MethodGet, "contoso.localhost?limit=3", nil, &p)
	if len(p.Guests) != 3 || p.Next != "c@x.partner.org" {
		t.Fatalf("first page: %+v", p)
	}
	after := p.Next
	p = page{}
	adminAPI(t, http.MethodGet, "contoso.localhost?limit=3&after="+url.QueryEscape(after), nil, &p)
	if len(p.Guests) != 1 || p.Guests[0].Email != "d@contoso.com" || p.Next != "" {
		t.Fatalf("second page: %+v", p)
	}
	p = page{}
	adminAPI(t, http.MethodGet, "contoso.localhost?q=%40x.partner.org&status=redeemed&source=otp", nil, &p)
	if len(p.Guests) != 1 || p.Guests[0].Email != "c@x.partner.org" {
		t.Errorf("search by domain: %+v", p)
	}
	for _, bad := range []string{"status=gone", "limit=0", "limit=501", "signed_in_after=yesterday"} {
		var body apiErr
		if s := adminAPI(t, http.MethodGet, "contoso.localhost?"+bad, nil, &body); s != http.StatusBadRequest || body.Error == "" {
			t.Errorf("%s: %d %q, want 400 with a reason", bad, s, body.Error)
		}
	}
}
