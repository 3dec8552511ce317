package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
	"github.com/otpgate/caddy-email-otp/internal/store/redisstore"
)

// consoleScreenshots are the console states saved with SCREENSHOTS, by
// file name (docs/console.md shows them).
var consoleScreenshots = map[string]string{
	"console home": "console-home", "console guests": "console-guests", "console search": "console-search",
	"console guest": "console-guest", "console confirm": "console-confirm", "console forbidden": "console-forbidden",
	"console invite with a mistake": "console-invite", "console overview": "console-overview",
}

// TestConsoleInChromium: with 100 000 guests in a tenant whose directory
// is in Redis, served by two nodes, an admin signs in to the console
// through the gateway in Chromium, finds one guest by search and revokes
// them, and the guest's next request on the other node is refused. Then
// every console page passes axe-core and the contrast check in light and
// dark, English and Arabic, on a phone and a desktop.
func TestConsoleInChromium(t *testing.T) {
	rs := redisserver.Start(t)
	const tenant, guests = "contoso.localhost", 100_000
	fillDirectory(t, rs.URL(0), tenant, guests)

	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	policy := "allow *@contoso.com\n\t\tstore redis " + rs.URL(0) + " {\n\t\t\tguest_directory\n\t\t}\n\t\tconsole /admin\n\t\tadmins " + bossAdmin
	e.load(e.contosoSite(policy, ""))
	startNode(t, asNodeB(e.contosoSite(policy, "")), "127.0.0.1:9180")

	// One of the 100 000 is signed in on node B.
	wanted := filledGuest(54310)
	g := newGuest(t)
	e.signIn(g, nodeB, hostBase, "/doc", wanted)
	g.backendView(nodeB + "/doc")

	look := pageLook{"light", "en", 1280}
	ctx := look.browser(t)
	signInToConsole(t, e, ctx, contoso+"/admin/")
	filter := chromedp.CSS(`form.filters button[type=submit]`)
	row := chromedp.CSS(`a[href="/admin/t/contoso.localhost/g/` + wanted + `"]`)
	must(t, "opening the tenant and searching", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/admin/t/contoso.localhost/"]`)), chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), strings.TrimSuffix(wanted, "@contoso.com")), chromedp.Click(filter), chromedp.WaitVisible(row)))
	if rows := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("tbody tr").length`)); rows != 1 {
		t.Errorf("the search for one address among %d shows %d rows", guests, rows)
	}
	must(t, "revoking the guest", chromedp.Do(ctx,
		chromedp.Click(row), chromedp.WaitVisible(chromedp.CSS(`a[href$="/revoke"]`)),
		chromedp.Click(chromedp.CSS(`a[href$="/revoke"]`)), chromedp.WaitVisible(chromedp.CSS(`form.confirm button`)),
		chromedp.Click(chromedp.CSS(`form.confirm button`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`))))
	if notice := run(t, ctx, chromedp.Evaluate[string](`document.querySelector("p.notice").textContent`)); notice != wanted+" is revoked." {
		t.Errorf("after revoking: %q", notice)
	}
	t.Logf("node B refused the revoked guest after %v", refusedWithin(t, nodeB+"/doc", g.cookie(nodeB+"/", "email_otp_session"), time.Second))
	var seen directory.Guest
	adminAPI(t, http.MethodGet, tenant+"/"+wanted, nil, &seen)
	if seen.Status != directory.Revoked {
		t.Errorf("the directory says %q after the console's revoke", seen.Status)
	}

	for i, look := range []pageLook{
		{"light", "en", 360}, {"dark", "en", 360}, {"light", "ar", 360}, {"dark", "ar", 360},
		{"light", "en", 1280}, {"dark", "en", 1280},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", look.scheme, look.lang, look.width), func(t *testing.T) {
			walkConsoleChecking(t, e, look, filledGuest(1000+3*i+1))
		})
	}
}

// walkConsoleChecking signs an admin in to the console in a browser of the
// look, walks its pages and checks each, revoking guest on the way.
func walkConsoleChecking(t *testing.T, e *env, look pageLook, guest string) {
	ctx := look.browser(t)
	check := pageChecker{t, ctx, look, consoleScreenshots, true}.check
	signInToConsole(t, e, ctx, contoso+"/admin/")
	check("console home")
	list := contoso + "/admin/t/contoso.localhost/"
	must(t, "the guest list", chromedp.Do(ctx, chromedp.Navigate(list), chromedp.WaitVisible(chromedp.CSS(`tbody tr`))))
	check("console guests")
	must(t, "a search", chromedp.Do(ctx, chromedp.Navigate(list+"?q=fabrikam.com&status=redeemed&signed_in_after=2026-01-01"), chromedp.WaitVisible(chromedp.CSS(`tbody tr`))))
	check("console search")
	must(t, "a bad filter", chromedp.Do(ctx, chromedp.Navigate(list+"?signed_in_before=soon"), chromedp.WaitVisible(chromedp.ID("filter-error"))))
	check("console bad filter")
	must(t, "nothing found", chromedp.Do(ctx, chromedp.Navigate(list+"?q=nobody-at-all"), chromedp.WaitVisible(chromedp.CSS(`main form`))))
	check("console nothing found")
	must(t, "the overview", chromedp.Do(ctx, chromedp.Navigate(list), chromedp.Click(chromedp.CSS(`a[href$="/overview"]`)), chromedp.WaitVisible(chromedp.CSS(`table.funnel`))))
	check("console overview")
	must(t, "the invitation form", chromedp.Do(ctx, chromedp.Navigate(list), chromedp.Click(chromedp.CSS(`a[href$="/invite"]`)), chromedp.WaitVisible(chromedp.ID("emails"))))
	check("console invite")
	must(t, "an invitation with a mistake", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("emails"), "new-"+guest+"\nnot an address"), chromedp.SendKeys(chromedp.ID("paths"), "/reports/"),
		chromedp.Click(chromedp.CSS(`form.invite button[type=submit]`)), chromedp.WaitVisible(chromedp.ID("emails-error"))))
	check("console invite with a mistake")
	must(t, "a guest", chromedp.Do(ctx, chromedp.Navigate(list+"g/"+guest+"?path=/finance/"), chromedp.WaitVisible(chromedp.CSS(`dl.facts`))))
	check("console guest")
	must(t, "the confirmation", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href$="/revoke"]`)), chromedp.WaitVisible(chromedp.CSS(`form.confirm button`))))
	check("console confirm")
	must(t, "revoking", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form.confirm button`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`))))
	check("console done")
	must(t, "a tenant that is not there", chromedp.Do(ctx, chromedp.Navigate(contoso+"/admin/t/initech.example/"), chromedp.WaitVisible(chromedp.CSS(`h1`))))
	check("console forbidden")
	must(t, "a page that is not there", chromedp.Do(ctx, chromedp.Navigate(contoso+"/admin/nothing/here"), chromedp.WaitVisible(chromedp.CSS(`h1`))))
	check("console not found")
}

// signInToConsole signs the gateway-wide admin in through the gateway's
// own pages, from the console's address, and waits for its home page.
func signInToConsole(t *testing.T, e *env, ctx context.Context, console string) {
	t.Helper()
	submit := chromedp.CSS(`main form button[type=submit]`)
	n := e.smtp.Count(bossAdmin)
	must(t, "asking for a console code", chromedp.Do(ctx,
		chromedp.Navigate(console), chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), bossAdmin), chromedp.Click(submit), chromedp.WaitVisible(chromedp.ID("code"))))
	code := codeIn(t, e.smtp.Wait(t, bossAdmin, n+1, 10*time.Second).Text)
	must(t, "entering it", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(submit), chromedp.WaitVisible(chromedp.CSS(`header.console-bar`))))
}

// filledGuest is the address of the i-th guest fillDirectory writes.
func filledGuest(i int) string {
	return fmt.Sprintf("guest%06d@%s", i, []string{"contoso.com", "fabrikam.com", "globex.example"}[i%3])
}

// fillDirectory writes n redeemed guests of tenant straight into the
// directory's Redis storage, as 100 000 invitations over months would
// leave them, and builds the index as a first list would.
func fillDirectory(t testing.TB, redisURL, tenant string, n int) {
	t.Helper()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	kv := redisstore.New(rdb, redisstore.Options{}).GuestStorage()
	ctx := context.Background()
	start := time.Now()
	now := start.Add(-time.Hour)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				invited, signed := now.Add(-time.Duration(i)*time.Minute), now.Add(-time.Duration(i%(60*24))*time.Minute)
				g := directory.Guest{Tenant: tenant, Email: filledGuest(i), Status: directory.Redeemed, Source: directory.SourceOTP,
					InvitedAt: &invited, InvitedBy: "ops@contoso.com", RedeemedAt: &invited, LastSignIn: &signed, UpdatedAt: now}
				data, _ := json.Marshal(g)
				if err := kv.Store(ctx, directory.RecordKey(tenant, g.Email), data); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	d := directory.New(kv, 10, time.Second)
	defer d.Close()
	if _, err := d.Find(ctx, tenant, directory.Query{Limit: 1}); err != nil {
		t.Fatalf("building the index of %d guests: %v", n, err)
	}
	t.Logf("%d guests written and indexed in %v", n, time.Since(start).Round(time.Millisecond))
}

// An admin makes a passkey after a console code and the next day signs in
// to the console with it and no mail. The console shares its origin, and so
// its passkeys' relying party, with the site's tenant: the admin's passkey
// opens no document there, a guest's passkey of that tenant opens no
// console, and once the admin is taken off admins their passkey opens the
// console no more.
func TestConsolePasskeys(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	admins := func(who string) string {
		return e.contosoSite("allow *@contoso.com\n\t\tconsole /admin\n\t\tadmins "+who, "")
	}
	e.load(admins(bossAdmin))
	console, doc := contoso+"/admin/", contoso+"/docs/plan.pdf"
	atConsole := chromedp.WaitVisible(chromedp.CSS(`header.console-bar`))

	boss := newBrowser(t)
	auth := authenticator(t, boss)
	codeSignIn(t, e, boss, console, bossAdmin, 1, true, true)
	must(t, "making the admin's passkey", chromedp.Do(boss, chromedp.Click(chromedp.ID("passkey-create")), atConsole))
	if creds := credentials(t, boss, auth); len(creds) != 1 || creds[0].RpID != "contoso.localhost" {
		t.Fatalf("the authenticator holds %+v; want one passkey for contoso.localhost", creds)
	}

	forgetSession(t, boss, console)
	passkeySignIn(t, boss, console, false)
	must(t, "the console after the passkey", chromedp.Do(boss, atConsole))
	if bar := run(t, boss, chromedp.Text(chromedp.CSS(`header.console-bar`))); !strings.Contains(bar, bossAdmin) {
		t.Errorf("the console's bar says %q after a passkey sign-in, want %s", bar, bossAdmin)
	}
	if n := e.smtp.Count(bossAdmin); n != 1 {
		t.Errorf("%d mails went to the admin, want only the first code", n)
	}

	t.Run("the admin's passkey opens no document", func(t *testing.T) {
		passkeySignIn(t, boss, doc, false)
		passkeyRefused(t, boss, "This passkey is not for this site")
	})

	t.Run("a guest's passkey opens no console", func(t *testing.T) {
		guest := newBrowser(t)
		authenticator(t, guest)
		enrolled(t, e, guest, doc, "ann@contoso.com", 1)
		passkeySignIn(t, guest, console, false)
		passkeyRefused(t, guest, "This passkey is not for this site")
	})

	t.Run("an admin taken off admins", func(t *testing.T) {
		e.load(admins("someone-else@example.org"))
		forgetSession(t, boss, console)
		passkeySignIn(t, boss, console, false)
		passkeyRefused(t, boss, "may not open this site any more")
	})
}
