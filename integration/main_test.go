// Package integration runs the gateway inside a real Caddy (in process, through
// caddytest), in front of a real backend, sending mail through a real SMTP
// server on loopback. Keep every test that starts Caddy in this one package and
// never mark them parallel: they share Caddy's admin port.
package integration

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	_ "github.com/otpgate/caddy-email-otp" // the module, as xcaddy would import it
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Fprintln(os.Stderr, "integration: -short would skip every Caddy test; run without -short")
		os.Exit(1)
	}
	// caddytest autosaves config under $HOME: keep it in temp dirs.
	tmp, err := os.MkdirTemp("", "email-otp-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, v := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME"} {
		dir := tmp + "/" + strings.ToLower(v)
		_ = os.MkdirAll(dir, 0o700)
		os.Setenv(v, dir)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}
