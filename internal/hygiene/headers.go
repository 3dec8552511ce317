// Package hygiene is the request and response hygiene a gateway in front of
// a backend needs, with no gateway in it: removing what a client sent to pass
// for the gateway's identity headers (copies in any case or with '_',
// Connection tokens, trailers), filtering the gateway's cookies out of the
// Cookie lines a backend sees, and keeping a backend from setting them.
package hygiene

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// SameHeaderName compares header names folding case and '_' to '-', so
// X_Auth_Email and x-auth-email are one name: backends behind CGI-style
// gateways read both as the same variable.
func SameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
		return '-'
	}
	return c
}

// ValidHeaderName reports whether h is a header name an operator may choose:
// letters, digits and '-'.
func ValidHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Headers are header names only the gateway may send to a backend,
// canonical.
type Headers []string

// Has reports whether name is one of them, folding case and '_'.
func (hs Headers) Has(name string) bool {
	for _, ours := range hs {
		if SameHeaderName(name, ours) {
			return true
		}
	}
	return false
}

// Strip deletes every header of h that a backend could take for one of hs.
func (hs Headers) Strip(h http.Header) {
	for name := range h {
		if hs.Has(name) {
			delete(h, name)
		}
	}
}

// StripClient removes everything a client could send to pass for one of hs,
// or to take it away on the way to the backend: copies and variants of the
// headers; Connection tokens that name them (a proxy drops the headers that
// Connection names, so the backend would get none); and request trailers
// that name them (a proxy forwards trailers after the body, past every
// header check).
func (hs Headers) StripClient(r *http.Request) {
	hs.Strip(r.Header)
	if conn, ok := r.Header["Connection"]; ok {
		r.Header["Connection"] = hs.withoutTokens(conn)
	}
	if r.Trailer != nil {
		// net/http fills the trailer values in when the body ends, into
		// this same map, whatever was declared: strip again then.
		hs.Strip(r.Trailer)
		r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer, headers: hs}
	}
}

// withoutTokens returns Connection values without the tokens that name one
// of hs; untouched values come back as they are.
func (hs Headers) withoutTokens(values []string) []string {
	named := false
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			named = named || hs.Has(textproto.TrimString(tok))
		}
	}
	if !named {
		return values
	}
	var kept []string
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" && !hs.Has(tok) {
				kept = append(kept, tok)
			}
		}
	}
	return []string{strings.Join(kept, ", ")}
}

// trailerGuard strips the headers from a request's trailers once the body
// has been read to its end, which is when net/http adds them.
type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
	headers Headers
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.headers.Strip(b.trailer)
	}
	return n, err
}
