package flow

import "net/netip"

// clientNetwork is what the per-IP limit counts for a client address: an
// IPv4 address alone, an IPv6 address by its /64. One IPv6 subscriber or
// server is handed a whole /64 (2^64 addresses), so counting single IPv6
// addresses would let one client send without limit by changing the low
// bits. Anything that is not an IP is counted as given.
func clientNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64) // a valid IPv6 address always has a /64
	return p.String()
}
