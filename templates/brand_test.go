package templates

import (
	"strings"
	"testing"
)

func TestCheckAccent(t *testing.T) {
	for _, tc := range []struct {
		color string
		dark  bool
		ok    bool
	}{
		{"#0b57a4", false, true}, // the default
		{"#8cb8ff", true, true},  // the default in dark
		{"#7a1fa2", false, true},
		{"#ffcc00", false, false}, // yellow on white
		{"#0b57a4", true, false},  // dark blue on a dark page
		{"#808080", false, false},
	} {
		err := CheckAccent(tc.color, tc.dark)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAccent(%s, dark %v) = %v", tc.color, tc.dark, err)
		}
		if err != nil && !strings.Contains(err.Error(), ":1 against") {
			t.Errorf("%s: the error does not name the ratio: %v", tc.color, err)
		}
	}
	for _, bad := range []string{"blue", "#fff", "#12345g", "0b57a4"} {
		if err := CheckAccent(bad, false); err == nil || !strings.Contains(err.Error(), "#rrggbb") {
			t.Errorf("CheckAccent(%q) = %v", bad, err)
		}
	}
	// The page's own palette passes its own check.
	if got := contrast(rgb{0x55, 0x55, 0x55}, rgb{0xff, 0xff, 0xff}); got < MinContrast {
		t.Errorf("muted text %.2f:1", got)
	}
}
