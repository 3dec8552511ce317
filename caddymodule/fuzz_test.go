package emailotp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeRD: the redirect target is the value unchanged or the tenant root,
// and a kept value is a local path inside the root that no browser reads as
// another host.
func FuzzSafeRD(f *testing.F) {
	for _, s := range []string{"/docs/a.pdf?x=1", "//evil.example", "/\\evil", "https://evil.example/", "/%2f%2fevil", "/t/acme/x", "/t/globex/", "/t/acme/.email-otp/verify", "javascript:alert(1)", "/a\r\nb"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, rd string, pathTenant bool) {
		tn := tenant{Key: "host.example", Root: "/"}
		if pathTenant {
			tn = tenant{Key: "acme", Root: "/t/acme/"}
		}
		got := safeRD(rd, tn)
		if got == tn.Root && rd != tn.Root {
			return
		}
		if got != rd {
			t.Fatalf("safeRD(%q) = %q: neither the value nor the root", rd, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\r\n\x00") ||
			hasControl(u.Path) || strings.HasPrefix(u.Path, "//") {
			t.Fatalf("safeRD(%q) kept a non-local target", rd)
		}
		if !strings.HasPrefix(u.Path, tn.Root) && u.Path+"/" != tn.Root {
			t.Fatalf("safeRD(%q) left the tenant root %q", rd, tn.Root)
		}
	})
}

// FuzzResolvePathTenant: a path tenant is a valid segment, its root is a
// prefix of the path as sent (not only as decoded), and nothing panics.
func FuzzResolvePathTenant(f *testing.F) {
	for _, s := range []string{"/t/acme/doc", "/t/", "/t/a%2fb/x", "/t/%2e%2e/x", "/t/acme/../x", "/t//x", "/x", "/t/acme"} {
		f.Add(s)
	}
	c := TenantConfig{From: TenantFromPath, Prefix: "/t/"}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		tn, err := c.resolve(&http.Request{URL: u, Host: "x.example"})
		if err != nil {
			return
		}
		if !validTenantSegment(tn.ID) || tn.Key != "path:"+tn.ID || tn.Root != "/t/"+tn.ID+"/" {
			t.Fatalf("%q: tenant %+v", target, tn)
		}
		if esc := u.EscapedPath(); !strings.HasPrefix(esc+"/", tn.Root) {
			t.Fatalf("%q: root %q is not what was sent (%q)", target, tn.Root, esc)
		}
	})
}

// hasControl is the fuzz oracle's own check for control characters (C0,
// DEL, C1), written apart from the one the gateway uses (textcheck), so a
// mistake there is not repeated here.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
