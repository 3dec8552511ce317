package flow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/otpgate/caddy-email-otp/internal/textcheck"
)

// ErrInvalidAddress is wrapped by every error ParseAddress returns, so callers can
// tell a guest's typo from a server fault.
var ErrInvalidAddress = errors.New("invalid email address")

// AddressReason says why ParseAddress refused an address. The words a guest
// reads for each live with the pages (templates.AddressProblem), in the
// guest's language; Error() is English, for logs and the admin API.
type AddressReason string

// The reasons ParseAddress gives.
const (
	AddressEmpty         AddressReason = "empty"
	AddressTooLong       AddressReason = "too_long"
	AddressControl       AddressReason = "control"
	AddressAtSign        AddressReason = "at_sign"
	AddressLocalEmpty    AddressReason = "local_empty"
	AddressLocalTooLong  AddressReason = "local_too_long"
	AddressLocalDots     AddressReason = "local_dots"
	AddressLocalNonASCII AddressReason = "local_non_ascii"
	AddressRouting       AddressReason = "routing"
	AddressLocalChar     AddressReason = "local_char"
	AddressDomain        AddressReason = "domain"
)

// AddressReasons lists every reason ParseAddress gives, for those who must
// have words for each.
func AddressReasons() []AddressReason {
	return []AddressReason{AddressEmpty, AddressTooLong, AddressControl, AddressAtSign, AddressLocalEmpty,
		AddressLocalTooLong, AddressLocalDots, AddressLocalNonASCII, AddressRouting, AddressLocalChar, AddressDomain}
}

// AddressError is a refused address: the reason, the character or limit it
// is about where there is one, and the English text.
type AddressError struct {
	Reason AddressReason
	Detail string // the offending character, or the limit, or the domain's problem
	text   string
}

func (e *AddressError) Error() string { return ErrInvalidAddress.Error() + ": " + e.text }

// Unwrap makes errors.Is(err, ErrInvalidAddress) true.
func (e *AddressError) Unwrap() error { return ErrInvalidAddress }

func addressError(reason AddressReason, detail, format string, args ...any) error {
	return &AddressError{Reason: reason, Detail: detail, text: fmt.Sprintf(format, args...)}
}

const (
	maxAddressLen = 254 // RFC 5321 path limit less the angle brackets
	maxLocalLen   = 64
	maxLabelLen   = 63
)

// ParseAddress returns the canonical form of a guest's email address: one bare
// addr-spec, lower-cased, ASCII only. It refuses everything that lets one string
// mean different mailboxes to different parsers (display names, comments, quoted
// local parts, domain literals, several addresses, control characters), because
// the same string is used for policy, mail, session and headers.
func ParseAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", addressError(AddressEmpty, "", "enter your email address")
	}
	if len(s) > maxAddressLen {
		return "", addressError(AddressTooLong, strconv.Itoa(maxAddressLen), "an address is at most %d characters", maxAddressLen)
	}
	if textcheck.HasControl(s) || !utf8.ValidString(s) {
		return "", addressError(AddressControl, "", "it contains a control character")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 || strings.Count(s, "@") != 1 {
		return "", addressError(AddressAtSign, "", "an address has exactly one @, like name@example.com")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocalPart(local); err != nil {
		return "", err
	}
	domain, err := CanonicalDomain(domain)
	if err != nil {
		return "", addressError(AddressDomain, err.Error(), "%v", err)
	}
	return strings.ToLower(local) + "@" + domain, nil
}

func checkLocalPart(local string) error {
	if local == "" {
		return addressError(AddressLocalEmpty, "", "the part before @ is empty")
	}
	if len(local) > maxLocalLen {
		return addressError(AddressLocalTooLong, strconv.Itoa(maxLocalLen), "the part before @ is at most %d characters", maxLocalLen)
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return addressError(AddressLocalDots, "", "dots may not start, end or repeat in the part before @")
	}
	for i := 0; i < len(local); i++ {
		if local[i] >= 0x80 {
			return addressError(AddressLocalNonASCII, "", "only ASCII letters are accepted before @")
		}
		if local[i] == '%' || local[i] == '!' {
			// "victim%evil.example@contoso.com" and bang paths ask a relay
			// to pass the mail on to another host: a domain rule would
			// admit an address whose mail goes elsewhere.
			return addressError(AddressRouting, string(local[i]), "%q routes mail through another host and is not accepted before @", local[i])
		}
		if !isAtext(local[i]) && local[i] != '.' {
			return addressError(AddressLocalChar, string(local[i]), "%q is not allowed before @", local[i])
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character (dot-atom without the dot).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// CanonicalDomain maps a domain to its one lower-case ASCII form (IDNA for
// non-ASCII names), which is then what policy, mail, session and headers all
// use, and checks it with CheckDomain.
func CanonicalDomain(domain string) (string, error) {
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("the domain %q is not a valid international domain name", domain)
	}
	ascii = strings.ToLower(ascii)
	return ascii, CheckDomain(ascii)
}

// CheckDomain reports why a lower-case ASCII domain can't receive mail from us:
// it must have at least two labels of letters, digits and inner hyphens, and a
// top-level label that is not all digits (so no IP addresses).
func CheckDomain(domain string) error {
	if domain == "" {
		return errors.New("the domain after @ is empty")
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return errors.New("the domain needs a dot, like example.com")
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabelLen {
			return fmt.Errorf("the domain %q has an empty or too long part", domain)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("the domain %q has a part that starts or ends with '-'", domain)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("the domain %q may only hold letters, digits, '-' and '.'", domain)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("the domain %q looks like an IP address", domain)
	}
	return nil
}
