package emailotp

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/mileusna/useragent"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/templates"
)

// What a code email says about the request that asked for it. Every part of
// that request is a stranger's to choose, and the email lands in the real
// owner's inbox next to a real code: nothing the stranger wrote may reach it
// as text, or "Call +1-555-0100 to keep your access" would read as ours.

// parseBaseURL checks a base_url option: http(s), a host, maybe a port, and
// nothing else. "" is no base URL.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || canonicalHost(u.Host) == "" {
		return nil, fmt.Errorf("base_url %q: give a scheme and host, and a port if needed, like https://docs.example.com", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// mailOrigin is the scheme and host of links in mail: base_url, or else the
// request's own.
func (g *Gateway) mailOrigin(r *http.Request) string {
	if g.baseURL != nil {
		return g.baseURL.String()
	}
	return origin(r)
}

// mailBase is the absolute URL of t's endpoints for links in a code email;
// "" (no link) for a tenant only a pattern admits, whose id, in the link's
// host or path, a stranger may have chosen.
func (g *Gateway) mailBase(r *http.Request, t tenant) string {
	if !t.Named {
		return ""
	}
	return g.mailOrigin(r) + t.Base()
}

// mailHost is the host of the one-time-code line ("@host #code"), which
// browsers use to offer the code only on that site; "" (no line) for a
// tenant only a pattern admits.
func (g *Gateway) mailHost(r *http.Request, t tenant) string {
	if !t.Named {
		return ""
	}
	if g.baseURL != nil {
		return canonicalHost(g.baseURL.Hostname())
	}
	return canonicalHost(r.Host)
}

// mailResourceOf is the link the guest asked for, for the code email; ""
// (not named) for a tenant only a pattern admits: its root is in the path.
func mailResourceOf(t tenant, rd string) string {
	if !t.Named {
		return ""
	}
	return rd
}

// maxMailResource bounds the path shown in mail.
const maxMailResource = 60

// mailResource is the path a guest asked for, as the email shows it: without
// its query (free text), still percent-encoded (so it reads as a path, not a
// sentence), and short.
func mailResource(rd string) string {
	u, err := url.Parse(rd)
	if err != nil || rd == "" {
		return ""
	}
	return truncate(u.EscapedPath(), maxMailResource)
}

// Browsers and systems the email may name; anything else is "a browser"
// (left out), never the User-Agent's own words.
var (
	knownBrowsers = []string{useragent.Chrome, useragent.Firefox, useragent.Safari, useragent.Edge,
		useragent.Opera, useragent.OperaMini, useragent.InternetExplorer, useragent.Vivaldi,
		useragent.MobileSafari, useragent.SamsungBrowser}
	knownSystems = []string{useragent.Windows, useragent.MacOS, useragent.Linux, useragent.Android,
		useragent.IOS, useragent.ChromeOS}
)

// browserName is a short "Firefox on Windows" for a User-Agent, from a fixed
// list, or "" when the browser is not one the list knows.
func browserName(ua string) (browser, system string) {
	if len(ua) > 512 {
		return "", ""
	}
	p := useragent.Parse(ua)
	if !slices.Contains(knownBrowsers, p.Name) {
		return "", ""
	}
	if slices.Contains(knownSystems, p.OS) {
		return p.Name, p.OS
	}
	return p.Name, ""
}

func (g *Gateway) composeCodeMail(c flow.CodeMail) (flow.Message, error) {
	notMe, err := g.notMeLink(c)
	if err != nil {
		return flow.Message{}, err
	}
	browser, system := browserName(c.UserAgent)
	subject, text, html, err := g.pages.set.Email(templates.EmailData{
		Code:      c.Code,
		NotMeLink: notMe,
		Tenant:    g.pages.displayNames.of(directory.TenantName(c.Tenant)),
		Brand:     g.pages.brandings.of(directory.TenantName(c.Tenant)),
		Resource:  mailResource(c.Resource),
		Host:      c.Host,
		ClientIP:  c.ClientIP,
		Browser:   browser,
		System:    system,
		ExpiresIn: c.ExpiresIn,
		Lang:      g.pages.set.Language(c.Language),
	})
	if err != nil {
		return flow.Message{}, err
	}
	return flow.Message{To: c.To, Subject: subject, Text: text, HTML: html}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
