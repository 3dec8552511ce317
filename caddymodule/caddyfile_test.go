package emailotp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func parse(t *testing.T, input string) (*Gateway, error) {
	t.Helper()
	g := new(Gateway)
	err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return g, err
}

func TestUnmarshalCaddyfileFullExample(t *testing.T) {
	g, err := parse(t, `email_otp {
		namespace partners
		tenant path /docs/
		base_url https://docs.example.com
		code_ttl     10m
		session_ttl  8h
		code_length  6
		max_attempts 3
		allow  *@contoso.com alice@gmail.com
		allow  *@*.partner.org
		block  *@mailinator.com
		mailer smtp {
			host smtp.example.com
			port 587
			username apikey
			password {env.SMTP_PASSWORD}
			from "Shared documents <no-reply@example.com>"
			tls implicit
			timeout 5s
		}
		store memory {
			max_challenges 500
		}
		keys {env.OTP_KEY} {env.OTP_OLD_KEY}
		templates /etc/caddy/otp-templates
		headers {
			email X-User
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if g.Tenant.From != "path" || g.Tenant.Prefix != "/docs/" || g.Tenant.Namespace != "partners" || g.BaseURL != "https://docs.example.com" {
		t.Errorf("tenant = %+v, base_url %q", g.Tenant, g.BaseURL)
	}
	if time.Duration(g.CodeTTL) != 10*time.Minute || time.Duration(g.SessionTTL) != 8*time.Hour || g.CodeLength != 6 || g.MaxAttempts != 3 {
		t.Errorf("durations/counts = %v %v %d %d", g.CodeTTL, g.SessionTTL, g.CodeLength, g.MaxAttempts)
	}
	if strings.Join(g.Allow, " ") != "*@contoso.com alice@gmail.com *@*.partner.org" || strings.Join(g.Block, " ") != "*@mailinator.com" {
		t.Errorf("allow %v block %v", g.Allow, g.Block)
	}
	var mailer map[string]any
	if err := json.Unmarshal(g.MailerRaw, &mailer); err != nil {
		t.Fatal(err)
	}
	if mailer["module"] != "smtp" || mailer["host"] != "smtp.example.com" || mailer["password"] != "{env.SMTP_PASSWORD}" ||
		mailer["tls"] != "implicit" || mailer["from"] != "Shared documents <no-reply@example.com>" {
		t.Errorf("mailer JSON = %s", g.MailerRaw)
	}
	if string(g.StoreRaw) != `{"max_challenges":500,"module":"memory"}` {
		t.Errorf("store JSON = %s", g.StoreRaw)
	}
	if len(g.Keys) != 2 || g.TemplatesDir != "/etc/caddy/otp-templates" || g.Headers.Email != "X-User" {
		t.Errorf("keys %v templates %q headers %+v", g.Keys, g.TemplatesDir, g.Headers)
	}
}

func TestUnmarshalCaddyfileMailersDeliveryAndNames(t *testing.T) {
	g, err := parse(t, `email_otp {
		allow *
		mailer mailgun {
			domain mg.example.com
			api_key {env.MAILGUN_API_KEY}
			from "Docs <docs@mg.example.com>"
			region eu
			timeout 5s
		}
		delivery {
			workers 2
			capacity 50
			attempts 3
			first_retry 1s
			max_retry 30s
			drain_timeout 5s
			lease 20s
		}
		display_name "Shared documents"
		display_name contoso.example.com "Contoso"
	}`)
	if err != nil {
		t.Fatal(err)
	}
	var mailer map[string]any
	_ = json.Unmarshal(g.MailerRaw, &mailer)
	if mailer["module"] != "mailgun" || mailer["api_key"] != "{env.MAILGUN_API_KEY}" || mailer["region"] != "eu" || mailer["domain"] != "mg.example.com" {
		t.Errorf("mailer JSON = %s", g.MailerRaw)
	}
	d := g.Delivery
	if d == nil || d.Workers != 2 || d.Capacity != 50 || d.Attempts != 3 || time.Duration(d.FirstRetry) != time.Second ||
		time.Duration(d.MaxRetry) != 30*time.Second || time.Duration(d.DrainTimeout) != 5*time.Second || time.Duration(d.Lease) != 20*time.Second {
		t.Errorf("delivery = %+v", d)
	}
	if g.DisplayName != "Shared documents" || g.DisplayNames["contoso.example.com"] != "Contoso" {
		t.Errorf("display names %q %v", g.DisplayName, g.DisplayNames)
	}
	names := tenantNames{all: g.DisplayName, byTenant: g.DisplayNames}
	if names.of("contoso.example.com") != "Contoso" || names.of("other") != "Shared documents" {
		t.Error("tenant names do not prefer the tenant's own name")
	}

	g, err = parse(t, `email_otp {
		allow *
		mailer smtp {
			host smtp.example.com
			from docs@example.com
			auth login
			ca_file /etc/ssl/relay-ca.pem
			insecure_skip_verify
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(g.MailerRaw, &mailer)
	if mailer["auth"] != "login" || mailer["ca_file"] != "/etc/ssl/relay-ca.pem" || mailer["insecure_skip_verify"] != true {
		t.Errorf("smtp JSON = %s", g.MailerRaw)
	}
}

func TestUnmarshalCaddyfileRedisStore(t *testing.T) {
	g, err := parse(t, `email_otp {
		allow *
		store redis {
			address 10.0.0.1:6379
			address 10.0.0.2:6379
			username gateway
			password {env.REDIS_PASSWORD}
			db 2
			tls
			cluster
			key_prefix docs:
			session_grace 1m
			session_cache 500ms
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	var store map[string]any
	_ = json.Unmarshal(g.StoreRaw, &store)
	if store["module"] != "redis" || len(store["addresses"].([]any)) != 2 || store["password"] != "{env.REDIS_PASSWORD}" ||
		store["db"] != 2.0 || store["tls"] != true || store["cluster"] != true || store["key_prefix"] != "docs:" ||
		store["session_cache"] != float64(500*time.Millisecond) {
		t.Errorf("store JSON = %s", g.StoreRaw)
	}
	g, err = parse(t, "email_otp {\n allow *\n store redis {\n session_cache off\n }\n}")
	if err != nil || !strings.Contains(string(g.StoreRaw), `"session_cache":-1`) {
		t.Errorf("session_cache off: %s %v", g.StoreRaw, err)
	}
	g, err = parse(t, "email_otp {\n allow *\n store redis {\n guest_directory\n }\n}")
	if err != nil || !strings.Contains(string(g.StoreRaw), `"guest_directory":true`) {
		t.Errorf("guest_directory: %s %v", g.StoreRaw, err)
	}
	g, err = parse(t, "email_otp {\n allow *\n store redis rediss://u:p@redis.internal:6380/1\n}")
	if err != nil || !strings.Contains(string(g.StoreRaw), `"url":"rediss://u:p@redis.internal:6380/1"`) {
		t.Errorf("url form: %s %v", g.StoreRaw, err)
	}
	rs := &RedisStore{URL: "rediss://u:p@redis.internal:6380/1"}
	o, err := rs.options()
	if err != nil || o.Addrs[0] != "redis.internal:6380" || o.DB != 1 || o.Username != "u" || o.Password != "p" || o.TLSConfig == nil {
		t.Errorf("options from the URL: %+v %v", o, err)
	}
	if _, err := (&RedisStore{URL: "redis://x", Addresses: []string{"y:1"}}).options(); err == nil {
		t.Error("url and addresses together were accepted")
	}
}

func TestUnmarshalCaddyfileTenantForms(t *testing.T) {
	for input, want := range map[string]TenantConfig{
		"email_otp {\n tenant host\n allow *\n}":           {From: "host"},
		"email_otp {\n tenant path\n allow *\n}":           {From: "path"},
		"email_otp {\n tenant static contoso\n allow *\n}": {From: "static", Name: "contoso"},
	} {
		g, err := parse(t, input)
		if err != nil {
			t.Errorf("%q: %v", input, err)
			continue
		}
		if *g.Tenant != want {
			t.Errorf("%q: tenant %+v, want %+v", input, *g.Tenant, want)
		}
	}
}

func TestUnmarshalCaddyfileErrorsNameTheOption(t *testing.T) {
	cases := map[string]string{
		"email_otp {\n code_ttl soon\n}":                          "code_ttl",
		"email_otp {\n session_ttl -5m\n}":                        "session_ttl",
		"email_otp {\n code_length eight\n}":                      "code_length",
		"email_otp {\n max_attempts\n}":                           "max_attempts",
		"email_otp {\n tenant\n}":                                 "tenant",
		"email_otp {\n tenant cookie\n}":                          "tenant",
		"email_otp {\n tenant static\n}":                          "tenant",
		"email_otp {\n allow\n}":                                  "allow",
		"email_otp {\n frobnicate yes\n}":                         "frobnicate",
		"email_otp {\n mailer\n}":                                 "mailer",
		"email_otp {\n mailer carrier-pigeon\n}":                  "carrier-pigeon",
		"email_otp {\n mailer smtp {\n tls ssl\n }\n}":            "tls",
		"email_otp {\n mailer smtp {\n port http\n }\n}":          "port",
		"email_otp {\n mailer smtp {\n helo x\n }\n}":             "helo",
		"email_otp {\n store memory {\n max_challenges -1\n }\n}": "max_challenges",
		"email_otp {\n store redis-ish\n}":                        "redis-ish",
		"email_otp {\n store redis {\n session_cache soon\n }\n}": "session_cache",
		"email_otp {\n delivery {\n lease forever\n }\n}":         "lease",
		"email_otp {\n headers {\n user X-User\n }\n}":            "user",
		"email_otp extra-arg":                                     "extra-arg",
	}
	for input, want := range cases {
		_, err := parse(t, input)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %q", input, err, want)
		}
	}
}

func TestCheckOptionsNamesTheOption(t *testing.T) {
	cases := map[string]struct {
		g    Gateway
		want string
	}{
		"empty allow":       {Gateway{}, "allow"},
		"bad allow":         {Gateway{Allow: []string{"contoso.com"}}, "contoso.com"},
		"short code":        {Gateway{Allow: []string{"*"}, CodeLength: 4}, "code_length"},
		"too many attempts": {Gateway{Allow: []string{"*"}, MaxAttempts: 1000}, "max_attempts"},
		"negative ttl":      {Gateway{Allow: []string{"*"}, CodeTTL: caddy.Duration(-time.Second)}, "code_ttl"},
		"bad prefix":        {Gateway{Allow: []string{"*"}, Tenant: &TenantConfig{From: "path", Prefix: "t"}}, "prefix"},
		"bad static name":   {Gateway{Allow: []string{"*"}, Tenant: &TenantConfig{From: "static", Name: "a/b"}}, "static"},
		"bad header":        {Gateway{Allow: []string{"*"}, Headers: &HeaderNames{Email: "X User"}}, "headers"},
		"bad base_url":      {Gateway{Allow: []string{"*"}, BaseURL: "docs.example.com/x"}, "base_url"},
		"bad namespace":     {Gateway{Allow: []string{"*"}, Tenant: &TenantConfig{Namespace: "a/b"}}, "namespace"},
	}
	for name, c := range cases {
		g := c.g
		g.applyDefaults()
		_, err := g.checkOptions()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
	ok := Gateway{Allow: []string{"*"}, CodeTTL: caddy.Duration(2 * time.Second)}
	ok.applyDefaults()
	if _, err := ok.checkOptions(); err != nil {
		t.Errorf("a 2s code_ttl (tests use seconds) is refused: %v", err)
	}
}
