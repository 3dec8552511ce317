package flow

import "testing"

func TestPolicy(t *testing.T) {
	p, err := NewPolicy(
		[]string{"*@Contoso.com", "*@*.partner.org", "alice@gmail.com"},
		[]string{"*@blocked.contoso.com", "mallory@contoso.com", "*@*.bad.partner.org"}, false,
	)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"bob@contoso.com":        true,
		"mallory@contoso.com":    false, // blocked address beats allowed domain
		"x@blocked.contoso.com":  false,
		"x@sub.contoso.com":      false, // *@contoso.com is that domain only
		"x@evilcontoso.com":      false,
		"x@contoso.com.evil.com": false,
		"x@eu.partner.org":       true,
		"x@a.b.partner.org":      true,
		"x@partner.org":          false, // *@*.partner.org is subdomains only
		"x@evilpartner.org":      false,
		"x@x.bad.partner.org":    false,
		"alice@gmail.com":        true,
		"bob@gmail.com":          false,
	}
	for addr, want := range cases {
		if got := p.Permits(addr); got != want {
			t.Errorf("Permits(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestPolicyMatchesInternationalDomainsInOneForm(t *testing.T) {
	p, err := NewPolicy([]string{"*@bücher.de"}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := ParseAddress("Bob@BÜCHER.de")
	if addr != "bob@xn--bcher-kva.de" || !p.Permits(addr) {
		t.Errorf("%q is not permitted by *@bücher.de", addr)
	}
}

func TestPolicyEveryoneButBlocked(t *testing.T) {
	p, err := NewPolicy([]string{"*"}, []string{"*@mailinator.com"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Permits("anyone@example.org") || p.Permits("spam@mailinator.com") {
		t.Error("allow * with a block list does not work")
	}
}

func TestPolicyRejectsBadConfig(t *testing.T) {
	if _, err := NewPolicy(nil, nil, false); err == nil {
		t.Error("an empty allow list must be an error, not everyone")
	}
	if p, err := NewPolicy(nil, nil, true); err != nil || p.Permits("a@b.co") {
		t.Errorf("invite_only with no allow list: %v, or it lets someone in by the lists", err)
	}
	for _, bad := range []string{"*@", "*.contoso.com", "contoso.com", "*@*", "a*@contoso.com", "*@contoso", "*@*.*.com"} {
		if _, err := NewPolicy([]string{bad}, nil, false); err == nil {
			t.Errorf("allow %q accepted", bad)
		}
		if _, err := NewPolicy([]string{"*"}, []string{bad}, false); err == nil {
			t.Errorf("block %q accepted", bad)
		}
	}
}
