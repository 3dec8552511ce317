package integration

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

var update = flag.Bool("update", false, "rewrite the expected JSON of the adapt tests")

// TestCaddyfileAdapt adapts every testdata/caddyfile_adapt/*.caddyfiletest
// (a Caddyfile, a line of ten dashes, the expected JSON) and Caddyfile.example
// (expected JSON in Caddyfile.example.json), as `caddy adapt` would.
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no adapt tests found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		input, expected, ok := strings.Cut(string(data), "\n----------\n")
		if !ok {
			t.Fatalf("%s: no ---------- line", f)
		}
		if *update {
			out := adapt(t, input+"\n")
			if err := os.WriteFile(f, []byte(input+"\n----------\n"+out), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Cut took the input's last newline, which a formatted Caddyfile has.
		if !caddytest.CompareAdapt(t, f, input+"\n", "caddyfile", expected) {
			t.Errorf("%s: adapted JSON differs (diff above); run go test ./integration -run Adapt -update to accept", f)
		}
	}

	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/caddyfile_adapt/Caddyfile.example.json"
	if *update {
		if err := os.WriteFile(golden, []byte(adapt(t, string(example))), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !caddytest.CompareAdapt(t, "Caddyfile.example", string(example), "caddyfile", string(want)) {
		t.Errorf("Caddyfile.example adapts differently from %s (diff above)", golden)
	}
}

func adapt(t *testing.T, input string) string {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s:%d %s", w.File, w.Line, w.Message)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestBadConfigIsRefusedWithTheOptionsName loads configs that adapt but must
// not provision, as `caddy validate` and a reload would.
func TestBadConfigIsRefusedWithTheOptionsName(t *testing.T) {
	cases := map[string]string{
		"email_otp {\n\t\ttenant host\n\t}":                                            "allow",
		"email_otp {\n\t\tallow *\n\t\tcode_length 4\n\t}":                             "code_length",
		"email_otp {\n\t\tallow contoso.com\n\t}":                                      "contoso.com",
		"email_otp {\n\t\tallow *\n\t\tkeys c2hvcnQ=\n\t}":                             "keys",
		"email_otp {\n\t\tallow *\n\t\tmailer smtp {\n\t\t\thost x\n\t\t}\n\t}":        "from",
		"email_otp {\n\t\tallow *\n\t\ttemplates /nonexistent/dir\n\t}":                "templates",
		"email_otp {\n\t\tallow *\n\t\tpasskeys maybe\n\t}":                            "passkeys on or passkeys off",
		"email_otp {\n\t\tallow *\n\t\tfederation {\n\t\t\tfallback maybe\n\t\t}\n\t}": "use code or off",
		"email_otp {\n\t\tallow *\n\t\tfederation {\n\t\t\tprovider x {\n\t\t\t\tissuer https://idp.example\n\t\t\t\tclient_id c\n\t\t\t}\n\t\t}\n\t}": "provider x: domains is required",
		// An accent that can't reach 4.5:1 names its ratio and what to change.
		"email_otp {\n\t\tallow *\n\t\tbranding {\n\t\t\taccent ffcc00\n\t\t}\n\t}":               "accent #ffcc00 reaches only 1.",
		"email_otp {\n\t\tallow *\n\t\tbranding acme {\n\t\t\taccent 0b57a4 0b57a4\n\t\t}\n\t}":   "branding acme: accent (dark) #0b57a4 reaches only 2.",
		"email_otp {\n\t\tallow *\n\t\tbranding {\n\t\t\tlogo http://x.example/l.png\n\t\t}\n\t}": "logo",
		"email_otp {\n\t\tallow *\n\t\tbranding {\n\t\t\tsupport javascript:alert(1)\n\t\t}\n\t}": "support",
	}
	for block, want := range cases {
		cfg := globalOptions(storageDir(t)) + "http://localhost:9080 {\n\t" + block + "\n\trespond ok\n}\n"
		caddytest.AssertLoadError(t, cfg, "caddyfile", want)
	}
}
