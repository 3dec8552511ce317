package emailotp

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/otpgate/caddy-email-otp/templates"
)

// Branding is how a tenant's pages and emails look beyond its display name.
// Every field is optional; an unset one keeps the gateway's default.
type Branding struct {
	// Logo is an image shown above each page's heading and at the top of
	// the emails, with the display name as its text: an https URL, a path
	// on this site ("/logo.svg"), or a data:image/… URL. Default: none.
	Logo string `json:"logo,omitempty"`
	// Accent colours links and buttons on light pages (and the emails'
	// button), as #rrggbb. It must reach 4.5:1 against the page and under
	// white text: a colour that can't is a config error naming the ratio.
	// Default #0b57a4.
	Accent string `json:"accent,omitempty"`
	// AccentDark is the accent of dark pages, checked against them the same
	// way. Default #8cb8ff.
	AccentDark string `json:"accent_dark,omitempty"`
	// Support is where a guest gets help, an https URL or a mailto: link:
	// linked on every page, named on the "not allowed" and error pages and
	// in the emails. Default: none.
	Support string `json:"support,omitempty"`
	// Privacy is the tenant's privacy notice (https URL), linked on every
	// page. Default: none.
	Privacy string `json:"privacy,omitempty"`
}

// tenantBrandings is every tenant's look: the gateway's branding, overridden
// field by field by a tenant's own.
type tenantBrandings struct {
	all      *Branding
	byTenant map[string]*Branding
}

// of is the look of tenant id.
func (b tenantBrandings) of(id string) templates.Brand {
	look := templates.Brand{}
	for _, src := range []*Branding{b.all, b.byTenant[id]} {
		if src == nil {
			continue
		}
		look.Logo = cmp.Or(src.Logo, look.Logo)
		look.Accent = cmp.Or(src.Accent, look.Accent)
		look.AccentDark = cmp.Or(src.AccentDark, look.AccentDark)
		look.Support = cmp.Or(src.Support, look.Support)
		look.Privacy = cmp.Or(src.Privacy, look.Privacy)
	}
	return look
}

// tenantNames are the names guests see: a tenant's own display name, else
// the gateway's, else the tenant id.
type tenantNames struct {
	all      string
	byTenant map[string]string
}

func (n tenantNames) of(id string) string {
	if name, ok := n.byTenant[id]; ok {
		return name
	}
	return cmp.Or(n.all, id)
}

// check refuses what would break a page or its colours, saying which option.
func (b *Branding) check(where string) error {
	if b == nil {
		return nil
	}
	if b.Accent != "" {
		if err := templates.CheckAccent(b.Accent, false); err != nil {
			return fmt.Errorf("%s: accent %w", where, err)
		}
	}
	if b.AccentDark != "" {
		if err := templates.CheckAccent(b.AccentDark, true); err != nil {
			return fmt.Errorf("%s: accent (dark) %w", where, err)
		}
	}
	if b.Logo != "" && logoOrigin(b.Logo) == "" {
		return fmt.Errorf("%s: logo %q: use an https URL, a path on this site such as /logo.svg, or a data:image/… URL", where, b.Logo)
	}
	if b.Support != "" && !linkable(b.Support, true) {
		return fmt.Errorf("%s: support %q: use an https URL or a mailto: address", where, b.Support)
	}
	if b.Privacy != "" && !linkable(b.Privacy, false) {
		return fmt.Errorf("%s: privacy %q: use an https URL", where, b.Privacy)
	}
	return nil
}

// logoOrigin is what the page's Content-Security-Policy must allow for the
// logo: 'self', data:, or the image's https origin; "" for a logo it refuses.
func logoOrigin(logo string) string {
	switch {
	case strings.HasPrefix(logo, "data:image/"):
		return "data:"
	case strings.HasPrefix(logo, "/") && !strings.HasPrefix(logo, "//"):
		return "'self'"
	}
	u, err := url.Parse(logo)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(logo, " ;'\"") {
		return ""
	}
	return "https://" + u.Host
}

// linkable reports whether s may be a link on a page: https, or mailto.
func linkable(s string, mailto bool) bool {
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, " \"'<>") {
		return false
	}
	return u.Scheme == "https" && u.Host != "" || mailto && u.Scheme == "mailto" && strings.Contains(u.Opaque, "@")
}

// unmarshalBranding reads `branding [<tenant>] { logo …; accent <light> [<dark>]; support …; privacy … }`.
// Colours are written without '#' (0b57a4) or quoted ("#0b57a4").
func (g *Gateway) unmarshalBranding(d *caddyfile.Dispenser) error {
	b := &Branding{}
	switch args := d.RemainingArgs(); len(args) {
	case 0:
		g.Branding = b
	case 1:
		if g.Brandings == nil {
			g.Brandings = make(map[string]*Branding)
		}
		g.Brandings[args[0]] = b
	default:
		return d.Err("branding takes an optional tenant id, then a block")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		switch {
		case opt == "accent" && (len(args) == 1 || len(args) == 2):
			b.Accent = hexColour(args[0])
			if len(args) == 2 {
				b.AccentDark = hexColour(args[1])
			}
		case opt == "accent":
			return d.Err("branding: accent takes a colour for light pages and optionally one for dark ones; in a Caddyfile '#' starts a comment, so write 0b57a4 or \"#0b57a4\"")
		case opt == "logo" && len(args) == 1:
			b.Logo = args[0]
		case opt == "support" && len(args) == 1:
			b.Support = args[0]
		case opt == "privacy" && len(args) == 1:
			b.Privacy = args[0]
		default:
			return d.Errf("branding: %s %v: use logo <url>, accent <rrggbb> [<rrggbb for dark pages>], support <url|mailto:>, privacy <url>", opt, args)
		}
	}
	return nil
}

// hexColour adds the '#' a Caddyfile colour is written without (there '#'
// starts a comment).
func hexColour(s string) string {
	if len(s) == 6 && !strings.HasPrefix(s, "#") {
		return "#" + s
	}
	return s
}
