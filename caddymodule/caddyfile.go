package emailotp

import (
	"encoding/json"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterDirective("email_otp", parseDirective)
	// After basic_auth, with the other auth directives: no `order` line needed,
	// and the placeholders exist before request_header and reverse_proxy run.
	httpcaddyfile.RegisterDirectiveOrder("email_otp", httpcaddyfile.After, "basic_auth")
}

// parseDirective is what RegisterHandlerDirective would do (matcher
// support), plus one thing: with a matcher, the requests it leaves out pass
// an IdentityStrip, so no client-sent X-Auth-Email reaches a backend of the
// same site through a route the gateway does not guard. The two routes'
// matchers are disjoint, so Caddy's sorting of routes can't reorder them
// into harm.
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	g := new(Gateway)
	if err := g.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	routes := h.NewRoute(matcherSet, g)
	if matcherSet == nil {
		return routes, nil
	}
	not, err := json.Marshal(caddyhttp.MatchNot{MatcherSetsRaw: []caddy.ModuleMap{matcherSet}})
	if err != nil {
		return nil, err
	}
	strip := h.NewRoute(caddy.ModuleMap{"not": not}, &IdentityStrip{Headers: g.Headers, AssertionHeader: g.Assertion.headerName()})
	return append(strip, routes...), nil
}

// UnmarshalCaddyfile sets up the gateway from Caddyfile tokens:
//
//	email_otp [<matcher>] {
//		tenant       host | path [/prefix/] | static <name>
//		code_ttl     <duration>           # default 30m
//		session_ttl  <duration>           # default 24h
//		code_length  <6-12>               # default 8
//		max_attempts <1-100>              # default 5
//		allow        <pattern...>         # required: * | *@domain | *@*.domain | address
//		block        <pattern...>
//		invite_only                       # invitations alone admit; allow may be empty
//		consent                           # ask before the first redemption
//		reveal_denied                     # say plainly when an address may not sign in
//		mask_addresses                    # log b***@contoso.com, not the whole address
//		mailer       dev | smtp { … } | mailgun { … }          # default dev
//		store        memory [{ … }] | redis <url> | redis { … } # default memory
//		keys         <base64 secret...>   # default: generated, kept in Caddy's storage
//		templates    <directory>
//		base_url     <scheme://host[:port]> # default: the request's own
//		namespace    <name>               # default: none; keeps tenants of other sites apart
//		tenants      <id|pattern...>      # default: host: the site's host names; path: none (required)
//		display_name [<tenant>] <name>    # default: the tenant id
//		console      <path>               # default: none; the admins' console, e.g. /admin
//		admins       [<tenant>] <pattern...> # who may use the console: every tenant, or that one
//		hsts         <max-age>            # default: off; Strict-Transport-Security on the gateway's HTTPS answers
//		assertion {                      # default: off
//			header   <name>               # default X-Auth-Assertion
//			audience <name...>
//			ttl      <duration>           # default 5m
//			rotate   <duration>           # default 7d
//		}
//		branding [<tenant>] {            # default: none
//			logo    <https URL|/path|data:image/…>
//			accent  <rrggbb> [<rrggbb>]    # light, dark; default 0b57a4 8cb8ff; 4.5:1 or a config error
//			support <https URL|mailto:…>
//			privacy <https URL>
//		}
//		delivery {
//			workers       <n>              # default 4
//			capacity      <n>              # default 1000
//			attempts      <n>              # default 6
//			first_retry   <duration>       # default 2s
//			max_retry     <duration>       # default 1m
//			drain_timeout <duration>       # default 10s
//			lease         <duration>       # default 15s; store redis only
//		}
//		limits {
//			per_address     <n> <window>  # default 10 1h
//			per_ip          <n> <window>  # default 50 1h
//			per_tenant      <n> <window>  # default 5000 1h
//			resend_cooldown <duration>|off # default 30s
//			backoff         <first> <max> # default 1m 1h
//			lock_after      <n> <for>     # default 100 24h
//			not_me          <duration>    # default 1h
//		}
//		headers {
//			email   <name>                # default X-Auth-Email
//			tenant  <name>                # default X-Auth-Tenant
//			method  <name>                # default X-Auth-Method
//			expires <name>                # default X-Auth-Session-Expires
//			status  <name>                # default X-Auth-Guest-Status
//		}
//	}
//
// allow, block and keys may be repeated; their values add up.
func (g *Gateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("email_otp takes its options in a block, not %q", d.Val())
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "tenant":
			if err := g.unmarshalTenant(d); err != nil {
				return err
			}
		case "code_ttl", "session_ttl":
			dur, err := durationArg(d, opt)
			if err != nil {
				return err
			}
			if opt == "code_ttl" {
				g.CodeTTL = dur
			} else {
				g.SessionTTL = dur
			}
		case "code_length", "max_attempts":
			val, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(val)
			if err != nil {
				return d.Errf("%s %q: not a whole number", opt, val)
			}
			if opt == "code_length" {
				g.CodeLength = n
			} else {
				g.MaxAttempts = n
			}
		case "allow", "block", "keys":
			vals := d.RemainingArgs()
			if len(vals) == 0 {
				return d.Errf("%s needs at least one value", opt)
			}
			switch opt {
			case "allow":
				g.Allow = append(g.Allow, vals...)
			case "block":
				g.Block = append(g.Block, vals...)
			default:
				g.Keys = append(g.Keys, vals...)
			}
		case "mailer", "store":
			if !d.NextArg() {
				return d.Errf("%s needs a module name, e.g. '%s'", opt, map[string]string{"mailer": "smtp", "store": "memory"}[opt])
			}
			name := d.Val()
			ns := "http.handlers.email_otp." + opt + "s"
			unm, err := caddyfile.UnmarshalModule(d, ns+"."+name)
			if err != nil {
				return d.Errf("%s %s: %v", opt, name, err)
			}
			raw := caddyconfig.JSONModuleObject(unm, "module", name, nil)
			if opt == "mailer" {
				g.MailerRaw = raw
			} else {
				g.StoreRaw = raw
			}
		case "invite_only", "consent", "reveal_denied", "mask_addresses":
			if d.NextArg() {
				return d.Errf("%s takes no value", opt)
			}
			*map[string]*bool{"invite_only": &g.InviteOnly, "consent": &g.Consent, "reveal_denied": &g.RevealDenied, "mask_addresses": &g.MaskAddresses}[opt] = true
		case "passkeys":
			val, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			if val != "on" && val != "off" {
				return d.Errf("passkeys %q: use passkeys on or passkeys off", val)
			}
			on := val == "on"
			g.Passkeys = &on
		case "templates":
			val, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			g.TemplatesDir = val
		case "namespace":
			val, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			if g.Tenant == nil {
				g.Tenant = &TenantConfig{}
			}
			g.Tenant.Namespace = val
		case "tenants":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Err("tenants takes the tenant ids this gateway serves (names, or patterns like team-*)")
			}
			g.Tenants = append(g.Tenants, args...)
		case "hsts":
			dur, err := durationArg(d, opt)
			if err != nil {
				return err
			}
			g.HSTS = dur
		case "base_url":
			val, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			g.BaseURL = val
		case "console":
			val, err := oneArg(d, opt)
			if err != nil {
				return err
			}
			if g.Console == nil {
				g.Console = &ConsoleConfig{}
			}
			g.Console.Path = val
		case "admins":
			args := d.RemainingArgs()
			if g.Console == nil {
				g.Console = &ConsoleConfig{}
			}
			if err := g.Console.addAdmins(args); err != nil {
				return d.Err(err.Error())
			}
		case "display_name":
			args := d.RemainingArgs()
			switch len(args) {
			case 1:
				g.DisplayName = args[0]
			case 2:
				if g.DisplayNames == nil {
					g.DisplayNames = make(map[string]string)
				}
				g.DisplayNames[args[0]] = args[1]
			default:
				return d.Err("display_name takes a name, or a tenant id and a name")
			}
		case "assertion":
			if err := g.unmarshalAssertion(d); err != nil {
				return err
			}
		case "federation":
			if err := g.unmarshalFederation(d); err != nil {
				return err
			}
		case "branding":
			if err := g.unmarshalBranding(d); err != nil {
				return err
			}
		case "delivery":
			if err := g.unmarshalDelivery(d); err != nil {
				return err
			}
		case "limits":
			if err := g.unmarshalLimits(d); err != nil {
				return err
			}
		case "headers":
			if d.NextArg() {
				return d.ArgErr()
			}
			if g.Headers == nil {
				g.Headers = &HeaderNames{}
			}
			for d.NextBlock(1) {
				which := d.Val()
				val, err := oneArg(d, "headers "+which)
				if err != nil {
					return err
				}
				switch which {
				case "email":
					g.Headers.Email = val
				case "tenant":
					g.Headers.Tenant = val
				case "method":
					g.Headers.Method = val
				case "expires":
					g.Headers.Expires = val
				case "status":
					g.Headers.Status = val
				default:
					return d.Errf("headers: unknown header %q (use email, tenant, method, expires, status)", which)
				}
			}
		default:
			return d.Errf("unknown option %q (see the options table in the README of github.com/otpgate/caddy-email-otp)", opt)
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Gateway)(nil)
