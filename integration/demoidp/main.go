// Command demoidp is the demo's identity provider: a real OpenID Connect
// provider (zitadel/oidc's, as the tests run it) on localhost:9998 with one
// account, so `./xcaddy.sh run` shows both ways in: ada@idp.example signs in
// there (user ada, password secret), every other address gets a code.
package main

import (
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/otpgate/caddy-email-otp/integration/oidcprovider"
)

func main() {
	var callbacks []string
	for _, origin := range []string{"http://contoso.localhost:8080", "http://fabrikam.localhost:8080"} {
		callbacks = append(callbacks, origin+"/.email-otp/oidc/callback")
	}
	p, err := oidcprovider.Run("127.0.0.1:9998", "demo-gateway", "demo-secret", callbacks,
		oidcprovider.User{Username: "ada", Email: "ada@idp.example", EmailVerified: true})
	if err != nil {
		log.Fatalf("demoidp: %v (is something else on port 9998?)", err)
	}
	log.Printf("demoidp: the demo identity provider is at %s (user ada, password %s)", p.Issuer, oidcprovider.Password)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	p.Stop()
}
