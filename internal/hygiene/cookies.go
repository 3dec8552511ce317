package hygiene

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Cookies names the cookies only the gateway reads and sets, by base name;
// the __Host- and __Secure- forms of each count too. Every base name
// contains Marker, so a Cookie line without it is passed on untouched at
// the cost of one search.
type Cookies struct {
	Marker string
	Bases  []string
}

// Has reports whether name is one of the cookies.
func (c *Cookies) Has(name string) bool {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "__Host-"), "__Secure-")
	for _, b := range c.Bases {
		if name == b {
			return true
		}
	}
	return false
}

// RemoveFrom drops the cookies from h's Cookie lines and leaves every other
// cookie as the client sent it.
func (c *Cookies) RemoveFrom(h http.Header) {
	lines, ok := h["Cookie"]
	if !ok {
		return
	}
	if len(lines) == 1 { // what browsers send: one line
		// A new slice, never the old one changed in place: whoever
		// built the header may share its value slices.
		switch line := c.without(lines[0]); {
		case line == "":
			delete(h, "Cookie")
		case line != lines[0]:
			h["Cookie"] = []string{line}
		}
		return
	}
	kept := make([]string, 0, len(lines))
	for _, line := range lines {
		if line = c.without(line); line != "" {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// without returns one Cookie line without the cookies, split and trimmed as
// net/http reads it.
func (c *Cookies) without(line string) string {
	if !strings.Contains(line, c.Marker) {
		return line
	}
	var buf [8]string
	kept := buf[:0]
	for part := range strings.SplitSeq(line, ";") {
		part = textproto.TrimString(part)
		name, _, _ := strings.Cut(part, "=")
		if part != "" && !c.Has(textproto.TrimString(name)) {
			kept = append(kept, part)
		}
	}
	return strings.Join(kept, "; ")
}

// DropSetCookies removes Set-Cookie lines of h that name one of the cookies.
func (c *Cookies) DropSetCookies(h http.Header) {
	lines, ok := h["Set-Cookie"]
	if !ok {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		name, _, _ := strings.Cut(line, "=")
		if !c.Has(textproto.TrimString(name)) {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// Guard wraps w so that the answer written through it sets none of the
// cookies: on path tenants a backend (or a page it serves for another tenant
// of the same origin) could otherwise plant a session of its choosing.
// Other cookies pass untouched.
func (c *Cookies) Guard(w http.ResponseWriter) http.ResponseWriter {
	return &setCookieGuard{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, cookies: c}
}

type setCookieGuard struct {
	caddyhttp.ResponseWriterWrapper
	cookies *Cookies // shared, not copied: one word per answer
	checked bool
}

func (g *setCookieGuard) WriteHeader(status int) {
	if !g.checked {
		if status >= 200 {
			g.checked = true
		}
		g.cookies.DropSetCookies(g.Header())
	}
	g.ResponseWriterWrapper.WriteHeader(status)
}

func (g *setCookieGuard) Write(b []byte) (int, error) {
	if !g.checked {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.Write(b)
}

// ReadFrom keeps io.Copy on the wrapper's path (headers checked first).
func (g *setCookieGuard) ReadFrom(r io.Reader) (int64, error) {
	if !g.checked {
		g.WriteHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.ReadFrom(r)
}
