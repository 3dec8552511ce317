package flow

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	good := map[string]string{
		"alice@example.com":                      "alice@example.com",
		"  Alice@Example.COM ":                   "alice@example.com",
		"first.last+tag@sub.ex-1.io":             "first.last+tag@sub.ex-1.io",
		"o'brien@example.ie":                     "o'brien@example.ie",
		strings.Repeat("a", 64) + "@example.com": strings.Repeat("a", 64) + "@example.com",
		"bob@Bücher.de":                          "bob@xn--bcher-kva.de",
		"bob@xn--bcher-kva.de":                   "bob@xn--bcher-kva.de",
		"bob@ＥＸＡＭＰＬＥ.com":                        "bob@example.com", // full-width letters map to ASCII
	}
	for in, want := range good {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "alice", "alice@", "@example.com", "a@b@example.com", "alice@localhost",
		"Alice <alice@example.com>", "alice@example.com (Alice)", `"a b"@example.com`,
		"alice@[192.0.2.1]", "alice@192.0.2.1", "alice@example.com,bob@example.com",
		"alice@example.com\r\nBcc: x@evil.com", "alice\x00@example.com", ".alice@example.com",
		"al..ice@example.com", "alice.@example.com", "alice@-example.com", "alice@example..com",
		"älice@example.com", "alice@example.com.", "alice @example.com", "alice@exa_mple.com",
		"alice\u2028x@example.com", "alice@ex\u00adample\u200b.com\x85", "a@\xff.com", "a@b\u3002", "a@-x.com",
		strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 250) + ".com",
		"victim%evil.example@contoso.com", "evil.example!victim@contoso.com",
	}
	for _, in := range bad {
		if got, err := ParseAddress(in); err == nil || !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("ParseAddress(%q) = %q, %v; want ErrInvalidAddress", in, got, err)
		}
	}
}

func TestParseAddressGivesReasons(t *testing.T) {
	cases := map[string]AddressReason{
		"":                                "empty",
		strings.Repeat("a", 255):          AddressTooLong,
		"a\x00b@example.com":              AddressControl,
		"ann\u202e@example.com":           AddressControl,
		"ann@exa\u2028mple.com":           AddressControl,
		"ann\xff@example.com":             AddressControl,
		"a@b@example.com":                 AddressAtSign,
		"@example.com":                    AddressLocalEmpty,
		strings.Repeat("a", 65) + "@x.io": AddressLocalTooLong,
		"a..b@example.com":                AddressLocalDots,
		"älice@example.com":               AddressLocalNonASCII,
		"victim%evil.example@contoso.com": AddressRouting,
		`"a b"@example.com`:               AddressLocalChar,
		"alice@localhost":                 AddressDomain,
	}
	for in, want := range cases {
		_, err := ParseAddress(in)
		var ae *AddressError
		if !errors.As(err, &ae) || ae.Reason != want || !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("ParseAddress(%q): %v, want reason %q", in, err, want)
		}
	}
	tested := map[AddressReason]bool{}
	for _, r := range cases {
		tested[r] = true
	}
	if len(AddressReasons()) != len(tested) {
		t.Errorf("%d reasons listed, %d tested", len(AddressReasons()), len(tested))
	}
}

func TestPerIPCountsIPv6ByItsSlash64(t *testing.T) {
	for ip, want := range map[string]string{
		"203.0.113.7":             "203.0.113.7",
		"::ffff:203.0.113.7":      "203.0.113.7",
		"2001:db8:1:2::1":         "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:1:2:3": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":         "2001:db8:1:3::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not an ip":               "not an ip",
	} {
		if got := clientNetwork(ip); got != want {
			t.Errorf("clientNetwork(%q) = %q, want %q", ip, got, want)
		}
	}
}
