package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
)

// Passkeys in a real Chromium, with the DevTools virtual authenticator
// standing in for the device's own (a platform authenticator with user
// verification, as a phone's or laptop's screen lock is).

// authenticator gives the browser a device authenticator that holds
// passkeys and verifies the user at once; it returns its id.
func authenticator(t *testing.T, ctx context.Context) webauthn.AuthenticatorID {
	t.Helper()
	var id webauthn.AuthenticatorID
	must(t, "adding a virtual authenticator", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
		id = res.AuthenticatorID
		return err
	})))
	return id
}

// credentials are the passkeys the virtual authenticator holds.
func credentials(t *testing.T, ctx context.Context, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	var creds []*webauthn.Credential
	must(t, "reading the authenticator's passkeys", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		creds = res.Credentials
		return err
	})))
	return creds
}

// forgetSession drops the browser's session cookie, as its expiry the next
// day would; the device marker and everything else stay.
func forgetSession(t *testing.T, ctx context.Context, deep string) {
	t.Helper()
	must(t, "dropping the session cookie", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		got, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{deep}})
		if err != nil {
			return err
		}
		for _, c := range got.Cookies {
			if c.Name == "email_otp_session" {
				if _, err := cdp.Call(ctx, tg, network.DeleteCookies, network.DeleteCookiesParams{Name: c.Name, Domain: c.Domain, Path: c.Path}); err != nil {
					return err
				}
				return nil
			}
		}
		return fmt.Errorf("no session cookie for %s among %d", deep, len(got.Cookies))
	})))
}

// codeSignIn signs in by code in the browser, from a device that can make
// a passkey, and checks the passkey offer is shown (offered) or the guest
// lands at once; mails is how many codes the address will have had. With
// passkeys on, the code goes once the page has told the gateway the device
// can make one.
func codeSignIn(t *testing.T, e *env, ctx context.Context, deep, email string, mails int, passkeysOn, offered bool) {
	t.Helper()
	must(t, "asking for a code", chromedp.Do(ctx,
		chromedp.Navigate(deep),
		chromedp.WaitVisible(chromedp.ID("email")),
		void(chromedp.Evaluate[any](`document.getElementById("email").value = ""`)),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.CSS(`form[action$="send"] button`)),
		chromedp.WaitVisible(chromedp.ID("code")),
	))
	code := codeIn(t, e.smtp.Wait(t, email, mails, 10*time.Second).Text)
	next := chromedp.WaitVisible(chromedp.CSS("pre"))
	if offered {
		next = chromedp.WaitVisible(chromedp.ID("passkey-create"))
	}
	ready := `true`
	if passkeysOn {
		ready = `document.querySelector("form.code input[name=passkey_ready]") !== null`
	}
	must(t, "entering the code", chromedp.Do(ctx,
		void(chromedp.Poll[any](ready, chromedp.WithPollingTimeout(5*time.Second))),
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.CSS(`form[action$="verify"] button`)),
		next,
	))
}

// landedAs waits for the backend's answer and returns the method header it
// saw; where the backend got an assertion too, its amr must say the same.
func landedAs(t *testing.T, ctx context.Context, deep, email string) string {
	t.Helper()
	must(t, "landing on the link", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("pre"))))
	if landed := run(t, ctx, chromedp.Location()); landed != deep {
		t.Errorf("landed on %q, want the deep link %q", landed, deep)
	}
	var seen backendSeen
	body := run(t, ctx, chromedp.Text(chromedp.CSS("pre")))
	if err := json.Unmarshal([]byte(body), &seen); err != nil || len(seen.Headers["X-Auth-Email"]) != 1 || seen.Headers["X-Auth-Email"][0] != email {
		t.Fatalf("the backend did not see %s (%v); page:\n%s", email, err, body)
	}
	method := strings.Join(seen.Headers["X-Auth-Method"], ",")
	if token := seen.Headers["X-Auth-Assertion"]; len(token) == 1 {
		claims := assertionClaims(token[0])
		want := map[string]string{"passkey": "pop", "email-otp": "otp"}[method]
		if len(claims.AMR) != 1 || claims.AMR[0] != want {
			t.Errorf("a %s sign-in's assertion says amr %v, want [%s]", method, claims.AMR, want)
		}
	}
	return method
}

// assertedClaims are the claims of an assertion these tests read; the
// signature is the verifier's business (TestBackendVerifiesTheAssertion).
type assertedClaims struct {
	AMR []string `json:"amr"`
	IDP string   `json:"idp"`
}

func assertionClaims(token string) assertedClaims {
	parts := strings.Split(token, ".")
	var claims assertedClaims
	payload, _ := base64.RawURLEncoding.DecodeString(parts[min(1, len(parts)-1)])
	_ = json.Unmarshal(payload, &claims)
	return claims
}

// passkeySignIn opens deep with no session and signs in with the passkey:
// by the browser's autofill (conditional mediation, which the virtual
// authenticator answers at once), or by the button, with autofill made
// unavailable first.
func passkeySignIn(t *testing.T, ctx context.Context, deep string, autofill bool) {
	t.Helper()
	if autofill {
		must(t, "opening the link, the autofill signs in", chromedp.Do(ctx, chromedp.Navigate(deep)))
		return
	}
	must(t, "signing in with the passkey button", chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `PublicKeyCredential.isConditionalMediationAvailable = function () { return Promise.resolve(false); };`,
			})
			return err
		}),
		chromedp.Navigate(deep),
		chromedp.WaitVisible(chromedp.ID("passkey-signin")),
		chromedp.Click(chromedp.ID("passkey-signin")),
	))
}

// passkeyRefused waits for the sign-in page to say why the passkey did not
// sign in, and checks it says want and that no session was made.
func passkeyRefused(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	must(t, "waiting for the refusal", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("passkey-error"))))
	if got := run(t, ctx, chromedp.Text(chromedp.ID("passkey-error"))); !strings.Contains(got, want) {
		t.Errorf("the sign-in page says %q, want %q", got, want)
	}
	if run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("email") !== null`)) != true {
		t.Error("the refusal left no way to get a code")
	}
}

// A guest makes a passkey after a code, and the next day signs in with it
// and no mail, on the link they opened; on a host and on a path tenant.
func TestPasskeyEnrolThenSignInWithoutMail(t *testing.T) {
	for _, tc := range []struct {
		name, deep, rpID string
		autofill         bool
	}{
		{"host tenant, button", contoso + "/docs/plan.pdf", "contoso.localhost", false},
		{"path tenant, autofill", pathSite + "/t/acme/docs/plan.pdf", "localhost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, gatewayOptions{extra: "assertion"})
			ctx := newBrowser(t)
			auth := authenticator(t, ctx)
			codeSignIn(t, e, ctx, tc.deep, "ann@contoso.com", 1, true, true)
			must(t, "making the passkey", chromedp.Do(ctx, chromedp.Click(chromedp.ID("passkey-create"))))
			if m := landedAs(t, ctx, tc.deep, "ann@contoso.com"); m != "email-otp" {
				t.Errorf("the code sign-in reached the backend as %q", m)
			}
			creds := credentials(t, ctx, auth)
			if len(creds) != 1 || creds[0].RpID != tc.rpID || !creds[0].IsResidentCredential || len(creds[0].UserHandle) != 32 ||
				strings.Contains(string(creds[0].UserHandle), "ann") {
				t.Fatalf("the authenticator holds %+v; want one discoverable passkey for %s with a random 32-byte handle", creds, tc.rpID)
			}

			forgetSession(t, ctx, tc.deep)
			passkeySignIn(t, ctx, tc.deep, tc.autofill)
			if m := landedAs(t, ctx, tc.deep, "ann@contoso.com"); m != "passkey" {
				t.Errorf("the passkey sign-in reached the backend as %q, want passkey", m)
			}
			if n := e.smtp.Count("ann@contoso.com"); n != 1 {
				t.Errorf("%d mails sent to the guest, want only the first code", n)
			}
		})
	}
}

// enrolled signs email in by code at deep, makes a passkey on the offer,
// lands, and drops the session as the next day would.
func enrolled(t *testing.T, e *env, ctx context.Context, deep, email string, mails int) {
	t.Helper()
	codeSignIn(t, e, ctx, deep, email, mails, true, true)
	must(t, "making the passkey", chromedp.Do(ctx, chromedp.Click(chromedp.ID("passkey-create"))))
	landedAs(t, ctx, deep, email)
	forgetSession(t, ctx, deep)
}

const androidChrome = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"

// passkeyViews is what the admin API lists of a guest's passkeys.
type passkeyViews []struct {
	ID     string `json:"id"`
	Device string `json:"device"`
}

// A passkey signs in nowhere but its tenant, and not after the guest or the
// passkey lost their standing: each refusal says why on the sign-in page,
// which keeps the code as the way in, and makes no session.
func TestPasskeyRefusals(t *testing.T) {
	e := start(t, gatewayOptions{})
	guest := func(t *testing.T) context.Context {
		ctx := newBrowser(t)
		authenticator(t, ctx)
		return ctx
	}

	t.Run("another path tenant on the same host", func(t *testing.T) {
		ctx := guest(t)
		enrolled(t, e, ctx, pathSite+"/t/acme/docs/a.pdf", "pat@contoso.com", 1)
		passkeySignIn(t, ctx, pathSite+"/t/globex/docs/a.pdf", false)
		passkeyRefused(t, ctx, "This passkey is not for this site")
		// At home it still works.
		passkeySignIn(t, ctx, pathSite+"/t/acme/docs/a.pdf", false)
		if m := landedAs(t, ctx, pathSite+"/t/acme/docs/a.pdf", "pat@contoso.com"); m != "passkey" {
			t.Errorf("back at acme the passkey signed in as %q", m)
		}
	})

	t.Run("revoked guest", func(t *testing.T) {
		ctx := guest(t)
		enrolled(t, e, ctx, contoso+"/docs/a.pdf", "rev@contoso.com", 1)
		if st := adminAPI(t, http.MethodPost, "contoso.localhost/rev@contoso.com/revoke", nil, nil); st != http.StatusOK {
			t.Fatalf("revoke: %d", st)
		}
		passkeySignIn(t, ctx, contoso+"/docs/a.pdf", false)
		passkeyRefused(t, ctx, "may not open this site any more")
	})

	t.Run("reset guest", func(t *testing.T) {
		ctx := guest(t)
		enrolled(t, e, ctx, contoso+"/docs/a.pdf", "res@contoso.com", 1)
		if st := adminAPI(t, http.MethodPost, "contoso.localhost/res@contoso.com/reset", nil, nil); st != http.StatusOK {
			t.Fatalf("reset: %d", st)
		}
		passkeySignIn(t, ctx, contoso+"/docs/a.pdf", false)
		passkeyRefused(t, ctx, "no longer works here")
	})

	t.Run("deleted passkey", func(t *testing.T) {
		ctx := newBrowser(t, chromedp.UserAgent(androidChrome))
		authenticator(t, ctx)
		enrolled(t, e, ctx, contoso+"/docs/a.pdf", "del@contoso.com", 1)
		var list passkeyViews
		if st := adminAPI(t, http.MethodGet, "contoso.localhost/del@contoso.com/passkeys", nil, &list); st != http.StatusOK || len(list) != 1 ||
			list[0].Device != "Chrome on Android" {
			t.Fatalf("passkeys list: %d %+v, want one, made by Chrome on Android", st, list)
		}
		var why struct {
			Passkeys passkeyViews `json:"passkeys"`
			Gateways []struct {
				PasskeysOn bool `json:"passkeys_on"`
				Guest      struct {
					Passkeys []any `json:"passkeys"`
				} `json:"guest"`
			} `json:"gateways"`
		}
		adminAPIAt(t, "/email-otp/why/contoso.localhost/del@contoso.com", &why)
		if len(why.Passkeys) != 1 || why.Passkeys[0].ID != list[0].ID || len(why.Gateways) != 1 || !why.Gateways[0].PasskeysOn ||
			why.Gateways[0].Guest.Passkeys != nil {
			t.Errorf("why shows %+v; want the one passkey as the list shows it, passkeys on, and no raw key in the record", why)
		}
		if st := adminAPI(t, http.MethodDelete, "contoso.localhost/del@contoso.com/passkeys/"+list[0].ID, nil, nil); st != http.StatusOK {
			t.Fatalf("delete passkey: %d", st)
		}
		passkeySignIn(t, ctx, contoso+"/docs/a.pdf", false)
		passkeyRefused(t, ctx, "This passkey is not for this site")
	})

	t.Run("signature counter goes back", func(t *testing.T) {
		ctx := newBrowser(t)
		auth := authenticator(t, ctx)
		deep := contoso + "/docs/a.pdf"
		enrolled(t, e, ctx, deep, "clone@contoso.com", 1)
		passkeySignIn(t, ctx, deep, true) // the counter moves forward at the gateway
		landedAs(t, ctx, deep, "clone@contoso.com")
		forgetSession(t, ctx, deep)
		// A copy of the key, whose counter starts again: the way a cloned
		// authenticator shows itself.
		creds := credentials(t, ctx, auth)
		if len(creds) != 1 || creds[0].SignCount < 2 {
			t.Fatalf("the authenticator holds %+v", creds)
		}
		c := creds[0]
		copied := copiedCredential{CredentialID: c.CredentialID, IsResidentCredential: true, RpID: c.RpID,
			PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: 0, UserName: c.UserName, UserDisplayName: c.UserDisplayName}
		must(t, "replacing the passkey with a copy whose counter went back", chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: auth, CredentialID: c.CredentialID}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, addCopiedCredential, addCopiedCredentialParams{AuthenticatorID: auth, Credential: copied})
			return err
		})))
		passkeySignIn(t, ctx, deep, false)
		passkeyRefused(t, ctx, "The passkey did not work")
	})

	t.Run("blocked after enrolment", func(t *testing.T) {
		ctx := guest(t)
		enrolled(t, e, ctx, contoso+"/docs/a.pdf", "later@contoso.com", 1)
		e.load(gatewayOptions{extra: "block later@contoso.com"})
		passkeySignIn(t, ctx, contoso+"/docs/a.pdf", false)
		passkeyRefused(t, ctx, "may not open this site any more")
	})
}

// copiedCredential is WebAuthn.addCredential's credential without the
// fields this Chromium refuses to be sent at all (the CMTG extension's).
type copiedCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle"`
	SignCount            float64 `json:"signCount"`
	UserName             string  `json:"userName,omitempty"`
	UserDisplayName      string  `json:"userDisplayName,omitempty"`
}

type addCopiedCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      copiedCredential         `json:"credential"`
}

var addCopiedCredential = cdp.Command[addCopiedCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

// splitFront is one origin in front of two nodes, as a load balancer would
// be: the passkey ceremonies begin (…/passkey/*-options) on node a and
// everything else, their finish included, goes to node b. It returns the
// origin and how many requests each node got of the ceremonies.
func splitFront(t *testing.T, a, b string) (origin string, begun, finished *atomic.Int32) {
	t.Helper()
	origin, begun, finished = splitFrontBy(t, a, b, func(path string) bool { return strings.HasSuffix(path, "-options") })
	return origin, begun, finished
}

// splitFrontBy is one origin (port 9280) in front of two nodes: requests
// whose path toA picks go to node a, all others to node b. It counts the
// requests a got, and b's of the passkey ceremonies.
func splitFrontBy(t *testing.T, a, b string, toNodeA func(path string) bool) (origin string, begun, finished *atomic.Int32) {
	t.Helper()
	begun, finished = new(atomic.Int32), new(atomic.Int32)
	toA := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: a})
	toB := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: b})
	ln, err := net.Listen("tcp", ":9280")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case toNodeA(r.URL.Path):
			begun.Add(1)
			toA.ServeHTTP(w, r)
		case strings.Contains(r.URL.Path, "/passkey/"):
			finished.Add(1)
			toB.ServeHTTP(w, r)
		default:
			toB.ServeHTTP(w, r)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://contoso.localhost:9280", begun, finished
}

// A ceremony begun on one node finishes on another: both read it from
// Redis, once.
func TestPasskeyCeremoniesBeginOnOneNodeFinishOnTheOther(t *testing.T) {
	c := startCluster(t, "")
	front, begun, finished := splitFront(t, "127.0.0.1:9080", "127.0.0.1:9180")
	ctx := newBrowser(t)
	authenticator(t, ctx)
	deep := front + "/docs/a.pdf"
	enrolled(t, c.env, ctx, deep, "node@contoso.com", 1)
	passkeySignIn(t, ctx, deep, false)
	if m := landedAs(t, ctx, deep, "node@contoso.com"); m != "passkey" {
		t.Errorf("signed in as %q, want passkey", m)
	}
	if begun.Load() < 2 || finished.Load() < 2 {
		t.Errorf("node A began %d ceremonies and node B finished %d; want the enrolment and the sign-in each way", begun.Load(), finished.Load())
	}
	// What is left are ceremonies begun and never finished (the autofill's
	// of the first sign-in page), each on its way out.
	left := askRedis(t, c, func(ctx context.Context, r *redis.Client) ([]string, error) {
		return r.Keys(ctx, "*ceremony*").Result()
	})
	if len(left) > 1 {
		t.Errorf("%d ceremonies left in Redis, want at most the one never finished: %v", len(left), left)
	}
	for _, k := range left {
		ttl := askRedis(t, c, func(ctx context.Context, r *redis.Client) (time.Duration, error) { return r.TTL(ctx, k).Result() })
		if ttl <= 0 || ttl > 5*time.Minute {
			t.Errorf("ceremony %s lives another %v, want at most 5m", k, ttl)
		}
	}
}

// "Not now" holds in this browser: the next code sign-in lands at once. With
// passkeys off nothing is offered and the ceremonies are not there.
func TestPasskeyNotNowAndOff(t *testing.T) {
	e := start(t, gatewayOptions{})
	ctx := newBrowser(t)
	authenticator(t, ctx)
	deep := contoso + "/docs/a.pdf"
	codeSignIn(t, e, ctx, deep, "nn@contoso.com", 1, true, true)
	must(t, "not now", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action$="passkey"] button`))))
	if m := landedAs(t, ctx, deep, "nn@contoso.com"); m != "email-otp" {
		t.Errorf("landed as %q", m)
	}
	forgetSession(t, ctx, deep)
	codeSignIn(t, e, ctx, deep, "nn@contoso.com", 2, true, false)
	landedAs(t, ctx, deep, "nn@contoso.com")

	e.load(gatewayOptions{extra: "passkeys off"})
	ctx = newBrowser(t)
	authenticator(t, ctx)
	codeSignIn(t, e, ctx, deep, "off@contoso.com", 1, false, false)
	landedAs(t, ctx, deep, "off@contoso.com")
	forgetSession(t, ctx, deep)
	must(t, "the sign-in page", chromedp.Do(ctx, chromedp.Navigate(deep), chromedp.WaitVisible(chromedp.ID("email"))))
	if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#passkey-signin, script").length`)); n != 0 {
		t.Errorf("with passkeys off the sign-in page has %d passkey buttons or scripts", n)
	}
	expectStatus(t, newGuest(t).post(contoso+hostBase+"passkey/signin-options", nil), http.StatusNotFound)
}
