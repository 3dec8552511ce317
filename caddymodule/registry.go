package emailotp

import "sync"

// gatewayRegistry is the set of provisioned gateways of the loaded configs,
// for what works across them: the admin API (which gateway serves an
// invited link, whose directory to change), "why", health, jwks.json and
// the change announcements. Every reader takes a snapshot, so no lock is
// held while a gateway does work (a store round trip, say).
type gatewayRegistry struct {
	mu  sync.Mutex
	set map[*Gateway]struct{}
}

var gateways = &gatewayRegistry{set: make(map[*Gateway]struct{})}

// add registers a gateway at the end of its Provision.
func (r *gatewayRegistry) add(g *Gateway) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set[g] = struct{}{}
}

// remove forgets a gateway at its Cleanup.
func (r *gatewayRegistry) remove(g *Gateway) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, g)
}

// loaded is a snapshot of the gateways loaded now.
func (r *gatewayRegistry) loaded() []*Gateway {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := make([]*Gateway, 0, len(r.set))
	for g := range r.set {
		all = append(all, g)
	}
	return all
}
