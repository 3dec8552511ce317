package emailotp

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/mileusna/useragent"
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
