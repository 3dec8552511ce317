// Package textcheck is the one definition of the characters that may not
// travel inside a line of text the gateway passes on: a URL path, an email
// address, a mail header, a log field. The adapter, the flow and the
// templates all ask it, so a character refused in one place cannot slip
// through another.
package textcheck

// IsControl reports whether r may not appear inside one line of text:
//   - C0 controls (NUL, TAB, CR, LF, …) and DEL: they end lines and headers;
//   - C1 controls (U+0080–U+009F, NEL among them): some readers end lines on them;
//   - U+2028 and U+2029, the Unicode line and paragraph separators;
//   - the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
//     U+2066–U+2069), which make text read differently from how it is stored.
func IsControl(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x2028 && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// HasControl reports whether s holds a character IsControl refuses. It reads
// bytes without decoding, because it runs on every request's path; invalid
// UTF-8 is not its concern (callers that need valid text check that apart).
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return true
		case c == 0xc2 && i+1 < len(s):
			if s[i+1] >= 0x80 && s[i+1] < 0xa0 { // U+0080–U+009F
				return true
			}
		case c == 0xe2 && i+2 < len(s):
			switch b1, b2 := s[i+1], s[i+2]; {
			case b1 == 0x80 && b2 >= 0xa8 && b2 <= 0xae: // U+2028–U+202E
				return true
			case b1 == 0x81 && b2 >= 0xa6 && b2 <= 0xa9: // U+2066–U+2069
				return true
			}
		}
	}
	return false
}

// OneLine replaces every character IsControl refuses with a space, so s can
// be shown as one line of plain text.
func OneLine(s string) string {
	if !HasControl(s) {
		return s
	}
	b := []rune(s)
	for i, r := range b {
		if IsControl(r) {
			b[i] = ' '
		}
	}
	return string(b)
}
