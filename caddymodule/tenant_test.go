package emailotp

import (
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestResolveHostTenant(t *testing.T) {
	c := TenantConfig{From: TenantFromHost}
	for host, want := range map[string]string{
		"Contoso.Example.com":       "contoso.example.com",
		"contoso.example.com:8443":  "contoso.example.com",
		"contoso.example.com.":      "contoso.example.com",
		"CONTOSO.example.com.:8080": "contoso.example.com",
		"[::1]:8080":                "::1",
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Host = host
		r.Header.Set("X-Forwarded-Host", "evil.example")
		got, err := c.resolve(r)
		if err != nil || got.Key != want || got.ID != want || got.Root != "/" {
			t.Errorf("host %q: %+v, %v; want %q", host, got, err, want)
		}
	}
}

func TestResolvePathTenant(t *testing.T) {
	c := TenantConfig{From: TenantFromPath, Prefix: "/t/"}
	good := map[string]tenant{
		"/t/acme/":            {Key: "path:acme", ID: "acme", Root: "/t/acme/"},
		"/t/acme/doc?x=1":     {Key: "path:acme", ID: "acme", Root: "/t/acme/"},
		"/t/acme":             {Key: "path:acme", ID: "acme", Root: "/t/acme/"},
		"/t/Acme-2_b.c/x/y.z": {Key: "path:Acme-2_b.c", ID: "Acme-2_b.c", Root: "/t/Acme-2_b.c/"},
	}
	for target, want := range good {
		got, err := c.resolve(httptest.NewRequest("GET", target, nil))
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", target, got, err, want)
		}
	}
	missing := []string{"/", "/t/", "/docs/x", "/t"}
	for _, target := range missing {
		if _, err := c.resolve(httptest.NewRequest("GET", target, nil)); !errors.Is(err, errNoTenant) {
			t.Errorf("%s: %v, want errNoTenant", target, err)
		}
	}
	bad := []string{"/t/a%2fb/x", "/t/%2e%2e/x", "/t/../etc", "/t/acme/../globex/x", "/t/acme//x", "/t/.hidden/", "/t/a%5cb/", "/t/a%00/", "/t/ac%20me/"}
	for _, target := range bad {
		if _, err := c.resolve(httptest.NewRequest("GET", target, nil)); !errors.Is(err, errBadTenant) {
			t.Errorf("%s: %v, want errBadTenant", target, err)
		}
	}
}

func TestSafeRD(t *testing.T) {
	acme := tenant{Key: "acme", Root: "/t/acme/"}
	host := tenant{Key: "contoso.example.com", Root: "/"}
	keep := map[string]tenant{
		"/docs/a.pdf?v=2&x=%2F": host,
		"/":                     host,
		"/t/acme/doc":           acme,
		"/t/acme/Q3%20report":   acme,
	}
	for rd, tn := range keep {
		if got := safeRD(rd, tn); got != rd {
			t.Errorf("safeRD(%q) = %q, want it kept", rd, got)
		}
	}
	replace := map[string]tenant{
		"/t/acme":                   acme,
		"/t/acme/#/../../globex/x":  acme,
		"/t/acme/..;/globex/x":      acme,
		"/docs;jsessionid=1/a":      host,
		"":                          host,
		"//evil.example":            host,
		"/\\evil.example":           host,
		"https://evil.example/":     host,
		"javascript:alert(1)":       host,
		"evil.example/x":            host,
		"/%2F%2Fevil.example":       host,
		"/%5Cevil.example":          host,
		"/a\r\nLocation: //evil":    host,
		"/a/../../b":                host,
		"/.email-otp/signout":       host,
		"/t/globex/doc":             acme,
		"/t/acme/../globex/":        acme,
		"/t/acme/.email-otp/verify": acme,
		"/t/acmeevil/":              acme,
	}
	for rd, tn := range replace {
		if got := safeRD(rd, tn); got != tn.Root {
			t.Errorf("safeRD(%q) = %q, want the root %q", rd, got, tn.Root)
		}
	}
}

// What a client may not send: the identity headers as configured, and the
// assertion's header even where no assertion is signed.
func TestClientForbiddenNamesEveryIdentityHeader(t *testing.T) {
	h := &HeaderNames{Email: "x-user"}
	h.applyDefaults()
	got := clientForbidden(h, "")
	want := []string{"X-User", "X-Auth-Tenant", "X-Auth-Method", "X-Auth-Session-Expires", "X-Auth-Guest-Status", "X-Auth-Assertion"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTenantConfigProduces(t *testing.T) {
	host := TenantConfig{From: TenantFromHost}
	path := TenantConfig{From: TenantFromPath, Prefix: "/t/"}
	static := TenantConfig{From: TenantFromStatic, Name: "docs"}
	cases := []struct {
		c    TenantConfig
		id   string
		want string
		ok   bool
	}{
		{host, "CONTOSO.example.", "contoso.example", true},
		{host, "127.0.0.1", "127.0.0.1", true},
		{host, "..", "", false},
		{host, "a..b", "", false},
		{host, "a/b", "", false},
		{host, "path:acme", "", false},
		{path, "path:acme", "path:acme", true},
		{path, "acme", "", false},
		{path, "path:..", "", false},
		{path, "path:.git", "", false},
		{static, "static:docs", "static:docs", true},
		{static, "docs", "", false},
		{static, "static:other", "", false},
		{TenantConfig{From: TenantFromPath, Namespace: "partners"}, "partners/path:acme", "partners/path:acme", true},
		{TenantConfig{From: TenantFromPath, Namespace: "partners"}, "path:acme", "", false},
	}
	for _, c := range cases {
		got, ok := c.c.produces(c.id)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("%s produces(%q) = %q, %v; want %q, %v", c.c.From, c.id, got, ok, c.want, c.ok)
		}
	}
}
