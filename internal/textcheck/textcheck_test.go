package textcheck

import (
	"testing"
	"unicode/utf8"
)

// Every rune, alone and between other text: the byte scan and the rune rule
// agree everywhere.
func TestHasControlAgreesWithIsControlForEveryRune(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := "a/" + string(r) + "/b"
		if got, want := HasControl(s), IsControl(r); got != want {
			t.Fatalf("U+%04X: HasControl %v, IsControl %v", r, got, want)
		}
	}
}

func TestWhatIsRefused(t *testing.T) {
	for _, s := range []string{"\x00", "a\rb", "a\nb", "\t", "\x7f", "\u0085", "\u009f", "\u2028", "\u2029", "invoice\u202Efdp.exe", "\u2066x\u2069"} {
		if !HasControl(s) {
			t.Errorf("%q passes", s)
		}
	}
	for _, s := range []string{"", "plain", "/t/acme/q3 report.pdf", "José", "東京", "مرحبا", "\u00a0", "\u200b", "\u2027", "\u202f", "\u2065", "\u206a", "😀", "\xc2", "\xe2\x80"} {
		if HasControl(s) {
			t.Errorf("%q refused", s)
		}
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"Bcc: x\r\nSubject: y": "Bcc: x  Subject: y",
		"a\u2028b\u0085c\x00d": "a b c d",
		"Ann\u202Eevil":        "Ann evil",
		"Zoë, 東京":              "Zoë, 東京",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzHasControl(f *testing.F) {
	f.Add("/t/acme/doc")
	f.Add("a\u2028b")
	f.Fuzz(func(t *testing.T, s string) {
		want := false
		for _, r := range s {
			want = want || IsControl(r)
		}
		if HasControl(s) != want {
			t.Fatalf("%q: HasControl %v, runes say %v", s, !want, want)
		}
		if out := OneLine(s); HasControl(out) || utf8.ValidString(s) && utf8.RuneCountInString(out) != utf8.RuneCountInString(s) {
			t.Fatalf("OneLine(%q) = %q", s, out)
		}
	})
}
