// Package oidcprovider runs a real OpenID Connect provider on loopback for
// the tests: zitadel/oidc's op package with its example storage and login
// page, holding the users a test gives it. Nothing is canned: discovery,
// keys, the authorization code flow with PKCE and the ID tokens are the
// library's.
package oidcprovider

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is an account at the provider; its password is "secret".
type User struct {
	Username      string
	Email         string
	EmailVerified bool
}

const password = "secret"

type users map[string]*storage.User

func (u users) GetUserByID(id string) *storage.User { return u[id] }
func (u users) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}
func (u users) ExampleClientID() string { return "example" }

// Provider is a running provider.
type Provider struct {
	Issuer string
	srv    *http.Server
}

// Start runs a provider with the users and one web client (id, secret) that
// may come back to redirectURIs, until the test ends.
func Start(t testing.TB, clientID, clientSecret string, redirectURIs []string, accounts ...User) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	store := users{}
	for i, a := range accounts {
		id := fmt.Sprintf("user-%d", i)
		store[id] = &storage.User{ID: id, Username: a.Username, Password: password, FirstName: "Test", LastName: a.Username, Email: a.Email, EmailVerified: a.EmailVerified}
	}
	storage.RegisterClients(storage.WebClient(clientID, clientSecret, redirectURIs...))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := exampleop.SetupServer(issuer, storage.NewStorage(store), quiet, false, op.WithAllowInsecure())
	p := &Provider{Issuer: issuer, srv: &http.Server{Handler: router}}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// Stop stops the provider: it answers nothing from now on.
func (p *Provider) Stop() { _ = p.srv.Close() }

var authRequestID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// LogIn walks a guest through the provider from authorizeURL, as a
// browser would, signing in as username; it returns the URL the provider
// sends the guest back to (the gateway's callback with code and state).
// client must not follow redirects.
func LogIn(client *http.Client, authorizeURL, username string) (string, error) {
	next := authorizeURL
	for range 10 {
		resp, err := client.Get(next)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 3:
			loc, err := resp.Location()
			if err != nil {
				return "", err
			}
			if !strings.HasPrefix(loc.String(), issuerOf(authorizeURL)) {
				return loc.String(), nil // back to the gateway
			}
			next = loc.String()
		case resp.StatusCode == http.StatusOK && strings.Contains(next, "/login/username"):
			m := authRequestID.FindSubmatch(body)
			if m == nil {
				return "", fmt.Errorf("the login page has no request id:\n%s", body)
			}
			post, err := client.PostForm(issuerOf(authorizeURL)+"/login/username", url.Values{"username": {username}, "password": {password}, "id": {string(m[1])}})
			if err != nil {
				return "", err
			}
			post.Body.Close()
			loc, err := post.Location()
			if err != nil {
				return "", fmt.Errorf("the login did not go on (%s): %v", post.Status, err)
			}
			next = loc.String()
			if !strings.HasPrefix(next, "http") {
				next = issuerOf(authorizeURL) + next
			}
		default:
			return "", fmt.Errorf("the provider answered %s at %s:\n%s", resp.Status, next, body)
		}
	}
	return "", fmt.Errorf("too many redirects at the provider")
}

func issuerOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}
