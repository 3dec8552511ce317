package templates

import (
	"fmt"
	htmltemplate "html/template"
	"math"
	"strconv"
	"strings"
)

// Brand is how one tenant's pages and emails look, beyond its name. Zero
// fields keep the defaults.
type Brand struct {
	Logo       string // image URL (https, a path on this site, or data:image/…)
	Accent     string // #rrggbb: links and buttons in light mode
	AccentDark string // #rrggbb: the same in dark mode
	Support    string // where a guest gets help: https URL or mailto:
	Privacy    string // the tenant's privacy notice: https URL
}

// LogoURL is the logo for an img src. Brand values are checked when the
// config loads (https, a local path or data:image/…), so a data: URL may pass
// html/template's URL filter.
func (b Brand) LogoURL() htmltemplate.URL { return htmltemplate.URL(b.Logo) }

// The page colours an accent is used against (see pages/layout.html): the
// page, the notices, and the text on a button of the accent colour.
var (
	lightBackdrops = []string{"#ffffff", "#eef4fb", "#fbf3e6"}
	darkBackdrops  = []string{"#121212", "#1a2433", "#2e2414"}
	lightOnAccent  = "#ffffff"
	darkOnAccent   = "#0a1a33"
)

// MinContrast is what text needs against its background (WCAG 2.2 AA).
const MinContrast = 4.5

// CheckAccent reports whether color (#rrggbb) can be the accent of the
// light (dark false) or dark pages: links on every backdrop and the text on
// its buttons reach MinContrast. The error names the worst ratio and what to
// change.
func CheckAccent(color string, dark bool) error {
	c, err := parseHex(color)
	if err != nil {
		return err
	}
	backdrops, onAccent, scheme, fix := lightBackdrops, lightOnAccent, "light", "a darker colour"
	if dark {
		backdrops, onAccent, scheme, fix = darkBackdrops, darkOnAccent, "dark", "a lighter colour"
	}
	worst, against := math.Inf(1), ""
	for _, b := range append(backdrops, onAccent) {
		bc, _ := parseHex(b)
		if r := contrast(c, bc); r < worst {
			worst, against = r, b
		}
	}
	if worst < MinContrast {
		return fmt.Errorf("%s reaches only %.2f:1 against %s on the %s pages; links and buttons need %.1f:1: pick %s", color, worst, against, scheme, MinContrast, fix)
	}
	return nil
}

type rgb [3]float64

func parseHex(s string) (rgb, error) {
	if len(s) != 7 || s[0] != '#' {
		return rgb{}, fmt.Errorf("colour %q: write it as #rrggbb", s)
	}
	var c rgb
	for i := range c {
		v, err := strconv.ParseUint(strings.ToLower(s[1+2*i:3+2*i]), 16, 8)
		if err != nil {
			return rgb{}, fmt.Errorf("colour %q: write it as #rrggbb", s)
		}
		c[i] = float64(v)
	}
	return c, nil
}

// contrast is the WCAG contrast ratio of two colours.
func contrast(a, b rgb) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(c rgb) float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.03928 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c[0]) + 0.7152*lin(c[1]) + 0.0722*lin(c[2])
}
