// Command testcaddy is Caddy with the standard modules and this one, as
// xcaddy builds it; the CLI tests build and run it.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/otpgate/caddy-email-otp"
)

func main() {
	caddycmd.Main()
}
