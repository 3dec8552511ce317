package caddymodule

import (
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// guestCacheTTL bounds how stale another node's view of a guest may be: a
// revocation made on one node ends sessions on the others within it.
const guestCacheTTL = 10 * time.Second

// guestCache is shared by every gateway and the admin API of the process, so
// a change made through the admin API applies here at the next request.
var guestCache = directory.NewCache(100_000, guestCacheTTL)

// guestDirectory is the directory in the config's storage.
func guestDirectory(ctx caddy.Context) *directory.Directory {
	return directory.WithCache(ctx.Storage(), guestCache)
}

// gateways are the provisioned gateways of the loaded configs: the admin API
// sends invitations through the one that serves the invited link.
var gateways = struct {
	sync.Mutex
	set map[*Gateway]struct{}
}{set: make(map[*Gateway]struct{})}

func registerGateway(g *Gateway) {
	gateways.Lock()
	defer gateways.Unlock()
	gateways.set[g] = struct{}{}
}

func unregisterGateway(g *Gateway) {
	gateways.Lock()
	defer gateways.Unlock()
	delete(gateways.set, g)
}
