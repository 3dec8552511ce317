package emailotp

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func (g *Gateway) unmarshalTenant(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Err("tenant needs a source: host, path [/prefix/] or static NAME")
	}
	t := &TenantConfig{From: args[0]}
	if g.Tenant != nil {
		t.Namespace = g.Tenant.Namespace
	}
	switch {
	case args[0] == TenantFromHost && len(args) == 1:
	case args[0] == TenantFromPath && len(args) <= 2:
		if len(args) == 2 {
			t.Prefix = args[1]
		}
	case args[0] == TenantFromStatic && len(args) == 2:
		t.Name = args[1]
	default:
		return d.Errf("tenant %v: use 'tenant host', 'tenant path [/prefix/]' or 'tenant static NAME'", args)
	}
	g.Tenant = t
	return nil
}

func (g *Gateway) unmarshalDelivery(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if g.Delivery == nil {
		g.Delivery = &DeliveryConfig{}
	}
	dc := g.Delivery
	for d.NextBlock(1) {
		opt := d.Val()
		val, err := oneArg(d, "delivery "+opt)
		if err != nil {
			return err
		}
		counts := map[string]*int{"workers": &dc.Workers, "capacity": &dc.Capacity, "attempts": &dc.Attempts}
		durations := map[string]*caddy.Duration{"first_retry": &dc.FirstRetry, "max_retry": &dc.MaxRetry, "drain_timeout": &dc.DrainTimeout, "lease": &dc.Lease}
		if p, ok := counts[opt]; ok {
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return d.Errf("delivery %s %q: use a positive whole number", opt, val)
			}
			*p = n
		} else if p, ok := durations[opt]; ok {
			if *p, err = parsePositiveDuration("delivery "+opt, val); err != nil {
				return d.Err(err.Error())
			}
		} else {
			return d.Errf("delivery: unknown option %q (use workers, capacity, attempts, first_retry, max_retry, drain_timeout, lease)", opt)
		}
	}
	return nil
}

func (g *Gateway) unmarshalLimits(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if g.Limits == nil {
		g.Limits = &LimitsConfig{}
	}
	l := g.Limits
	for d.NextBlock(1) {
		opt := d.Val()
		args := d.RemainingArgs()
		bad := func(format string) error { return d.Errf("limits %s %v: use "+format, opt, args) }
		switch opt {
		case "per_address", "per_ip", "per_tenant":
			if len(args) != 2 {
				return bad("<count> <window>, like 10 1h")
			}
			n, err := strconv.Atoi(args[0])
			w, werr := caddy.ParseDuration(args[1])
			if err != nil || n < 0 || werr != nil || w <= 0 {
				return bad("<count> <window>, like 10 1h")
			}
			lim := &Limit{Count: n, Window: caddy.Duration(w)}
			switch opt {
			case "per_address":
				l.PerAddress = lim
			case "per_ip":
				l.PerIP = lim
			default:
				l.PerTenant = lim
			}
		case "resend_cooldown", "not_me":
			if len(args) != 1 {
				return bad("one duration")
			}
			target := map[string]*caddy.Duration{"resend_cooldown": &l.ResendCooldown, "not_me": &l.NotMe}[opt]
			if opt == "resend_cooldown" && args[0] == "off" {
				*target = -1
				continue
			}
			dur, err := parsePositiveDuration("limits "+opt, args[0])
			if err != nil {
				return d.Err(err.Error())
			}
			*target = dur
		case "backoff":
			if len(args) != 2 {
				return bad("<first> <max>, like 1m 1h")
			}
			var err error
			if l.Backoff, err = parsePositiveDuration("limits backoff", args[0]); err != nil {
				return d.Err(err.Error())
			}
			if l.BackoffMax, err = parsePositiveDuration("limits backoff", args[1]); err != nil {
				return d.Err(err.Error())
			}
		case "lock_after":
			if len(args) != 2 {
				return bad("<tries> <duration>, like 100 24h")
			}
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return bad("<tries> <duration>, like 100 24h")
			}
			l.LockAfter = n
			if l.LockFor, err = parsePositiveDuration("limits lock_after", args[1]); err != nil {
				return d.Err(err.Error())
			}
		default:
			return d.Errf("limits: unknown option %q (use per_address, per_ip, per_tenant, resend_cooldown, backoff, lock_after, not_me)", opt)
		}
	}
	return nil
}

// unmarshalModuleBlock reads a guest module's Caddyfile form: its name, no
// arguments, then a block of one option per line. Flags take no value; every
// other option takes exactly one, handed to set. Errors name the module.
func unmarshalModuleBlock(d *caddyfile.Dispenser, what string, flags map[string]*bool, set func(opt, val string) error) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.Errf("%s takes its options in a block, not %q", what, d.Val())
	}
	return unmarshalBlock(d, what, flags, set)
}

// unmarshalBlock reads the block of unmarshalModuleBlock, for modules that
// also take arguments on their first line.
func unmarshalBlock(d *caddyfile.Dispenser, what string, flags map[string]*bool, set func(opt, val string) error) error {
	for d.NextBlock(0) {
		opt := d.Val()
		if flag, ok := flags[opt]; ok {
			if d.NextArg() {
				return d.Errf("%s: %s takes no value", what, opt)
			}
			*flag = true
			continue
		}
		var val string
		if !d.AllArgs(&val) {
			return d.Errf("%s: %s takes exactly one value", what, opt)
		}
		if err := set(opt, val); err != nil {
			return d.Errf("%s: %v", what, err)
		}
	}
	return nil
}

// parsePositiveDuration parses a Caddy duration that must be above zero.
func parsePositiveDuration(opt, val string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(val)
	if err != nil || dur <= 0 {
		return 0, fmt.Errorf("%s %q: use a positive duration such as 2s, 30m or 24h", opt, val)
	}
	return caddy.Duration(dur), nil
}

// durationArg reads opt's one value, a positive duration.
func durationArg(d *caddyfile.Dispenser, opt string) (caddy.Duration, error) {
	val, err := oneArg(d, opt)
	if err != nil {
		return 0, err
	}
	dur, err := parsePositiveDuration(opt, val)
	if err != nil {
		return 0, d.Err(err.Error())
	}
	return dur, nil
}

// oneArg reads opt's one value.
func oneArg(d *caddyfile.Dispenser, opt string) (string, error) {
	var val string
	if !d.AllArgs(&val) {
		return "", d.Errf("%s takes exactly one value", opt)
	}
	return val, nil
}
