package flow

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseAddress: whatever comes in, an accepted address is canonical:
// lower-case ASCII, one @, within the length limits, free of anything that
// could split a header or a log line, and parsing it again changes nothing.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"alice@example.com", "Bob@Bücher.de", "a@b@c.de", "x\r\n@y.co", `"q"@x.co`, "a@[1.2.3.4]", "a@xn--bcher-kva.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		addr, err := ParseAddress(in)
		if err != nil {
			return
		}
		if len(addr) > maxAddressLen || strings.Count(addr, "@") != 1 || strings.ToLower(addr) != addr || !utf8.ValidString(addr) {
			t.Fatalf("ParseAddress(%q) = %q", in, addr)
		}
		for i := 0; i < len(addr); i++ {
			if addr[i] < 0x21 || addr[i] >= 0x7f || strings.IndexByte(`<>()[]\,;:"`, addr[i]) >= 0 {
				t.Fatalf("ParseAddress(%q) = %q holds byte %q", in, addr, addr[i])
			}
		}
		if again, err := ParseAddress(addr); err != nil || again != addr {
			t.Fatalf("ParseAddress(%q) = %q, but again %q, %v", in, addr, again, err)
		}
	})
}

// FuzzSealerOpen: only values we sealed open (each seal has a random IV, so
// a value that opens must hold exactly what we sealed), and nothing panics.
func FuzzSealerOpen(f *testing.F) {
	keys, _ := NewKeys([]byte(strings.Repeat("k", 32)))
	sealer := keys.Sealer("session")
	want := Session{ID: "x", Email: "a@b.co", Tenant: "t"}
	good, _ := sealer.Seal("c|t", want)
	for _, s := range []string{good, good[:len(good)/2], "", "garbage", strings.Repeat("A", 5000), good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var s Session
		err := sealer.Open("c|t", value, &s)
		if err == nil && s != want {
			t.Fatalf("a value we did not seal opened: %q -> %+v", value, s)
		}
	})
}

// FuzzOpenSession: only values we sealed open, to exactly what we sealed.
func FuzzOpenSession(f *testing.F) {
	keys, _ := NewKeys([]byte(strings.Repeat("k", 32)))
	sealer := keys.SessionSealer(1)
	want := Session{ID: strings.Repeat("A", 22), Email: "a@b.co", Tenant: "t", IssuedAt: 10, ExpiresAt: 20}
	good, _ := sealer.SealSession("c", "t", want)
	for _, s := range []string{good, good[:len(good)/2], "", "garbage", strings.Repeat("A", 5000), good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		s, err := keys.SessionSealer(1).OpenSession("c", "t", value)
		if err == nil && s != want {
			t.Fatalf("a value we did not seal opened: %q -> %+v", value, s)
		}
	})
}
