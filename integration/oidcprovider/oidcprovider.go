// Package oidcprovider runs a real OpenID Connect provider on loopback for
// the tests: zitadel/oidc's op package with its example storage and login
// page, holding the users a test gives it. Nothing is canned: discovery,
// keys, the authorization code flow with PKCE and the ID tokens are the
// library's.
package oidcprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// User is an account at the provider; its password is Password.
type User struct {
	Username      string
	Email         string
	EmailVerified bool
}

// Password is every account's password.
const Password = "secret"

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

	mu     sync.Mutex
	tamper func(idToken string) string // nil: the token endpoint's answers go out as they are
	issued []string                    // every ID token the token endpoint gave out, oldest first
}

// Tamper makes the token endpoint hand out f(the ID token it made) instead
// of the token it made, as a provider's token endpoint in the wrong hands
// would; nil stops it.
func (p *Provider) Tamper(f func(idToken string) string) {
	p.mu.Lock()
	p.tamper = f
	p.mu.Unlock()
}

// Issued is every ID token the provider gave out, oldest first.
func (p *Provider) Issued() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// tokens records (and, with Tamper, replaces) the ID tokens of the token
// endpoint's answers.
func (p *Provider) tokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/token") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var answer map[string]any
		if json.Unmarshal(body, &answer) == nil {
			if id, ok := answer["id_token"].(string); ok {
				p.mu.Lock()
				p.issued = append(p.issued, id)
				if p.tamper != nil {
					answer["id_token"] = p.tamper(id)
				}
				p.mu.Unlock()
				body, _ = json.Marshal(answer)
			}
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// Start runs a provider with the users and one web client (id, secret) that
// may come back to redirectURIs, on a free loopback port, until the test ends.
func Start(t testing.TB, clientID, clientSecret string, redirectURIs []string, accounts ...User) *Provider {
	t.Helper()
	p, err := Run("127.0.0.1:0", clientID, clientSecret, redirectURIs, accounts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Run runs a provider on addr (issuer http://localhost:<port>) until Stop.
func Run(addr, clientID, clientSecret string, redirectURIs []string, accounts ...User) (*Provider, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	issuer := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	store := users{}
	for i, a := range accounts {
		id := fmt.Sprintf("user-%d", i)
		store[id] = &storage.User{ID: id, Username: a.Username, Password: Password, FirstName: "Test", LastName: a.Username, Email: a.Email, EmailVerified: a.EmailVerified}
	}
	// The storage takes the clients registered so far: OtherClient's too.
	storage.RegisterClients(storage.WebClient(clientID, clientSecret, redirectURIs...),
		storage.WebClient(OtherClient, otherSecret, otherRedirect))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := exampleop.SetupServer(issuer, storage.NewStorage(store), quiet, false, op.WithAllowInsecure())
	p := &Provider{Issuer: issuer}
	p.srv = &http.Server{Handler: p.tokens(router)}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
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
			post, err := client.PostForm(issuerOf(authorizeURL)+"/login/username", url.Values{"username": {username}, "password": {Password}, "id": {string(m[1])}})
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

// OtherClient is a second client every provider has, for TokenFor.
const (
	OtherClient   = "another-app"
	otherSecret   = "other-secret"
	otherRedirect = "http://localhost/other-client/callback"
)

// TokenForOtherClient signs username in for OtherClient and returns the ID
// token it got: a genuine token, for the wrong audience.
func (p *Provider) TokenForOtherClient(username string) (string, error) {
	var discovery struct {
		Auth  string `json:"authorization_endpoint"`
		Token string `json:"token_endpoint"`
	}
	resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	err = json.NewDecoder(resp.Body).Decode(&discovery)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	cfg := &oauth2.Config{ClientID: OtherClient, ClientSecret: otherSecret, RedirectURL: otherRedirect, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: discovery.Auth, TokenURL: discovery.Token}}
	verifier := oauth2.GenerateVerifier()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back, err := LogIn(client, cfg.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)), username)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(back)
	if err != nil {
		return "", err
	}
	tok, err := cfg.Exchange(context.Background(), u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	id, _ := tok.Extra("id_token").(string)
	return id, nil
}
