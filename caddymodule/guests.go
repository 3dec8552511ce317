package caddymodule

import (
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// guestCacheTTL bounds how stale another node's view of a guest may be: a
// revocation made on one node ends sessions on the others within it.
const guestCacheTTL = 10 * time.Second

// directories holds one directory (and so one cache) per storage, shared by
// the gateways and the admin API of the process: a change made through the
// admin API applies here at the next request.
var directories = caddy.NewUsagePool()

// loadDirectory returns the pooled directory of the config's storage and its
// pool key, for Cleanup.
func loadDirectory(ctx caddy.Context) (*directory.Directory, string, error) {
	st := ctx.Storage()
	key := fmt.Sprintf("%T %+v", st, st)
	d, err := loadPooled(directories, key, func() *directory.Directory {
		return directory.New(st, 100_000, guestCacheTTL)
	})
	return d, key, err
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

// loadedGateways is a snapshot of the gateways loaded now, for work that
// should not hold the lock (a store round trip each).
func loadedGateways() []*Gateway {
	gateways.Lock()
	defer gateways.Unlock()
	all := make([]*Gateway, 0, len(gateways.set))
	for g := range gateways.set {
		all = append(all, g)
	}
	return all
}

func unregisterGateway(g *Gateway) {
	gateways.Lock()
	defer gateways.Unlock()
	delete(gateways.set, g)
}
