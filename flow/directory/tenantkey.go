package directory

import "strings"

// Tenant keys. What a session, a code, a counter and a guest record are
// bound to is the tenant's key, not its bare id, so that one id means one
// tenant only: the path tenant /t/contoso.example/ is not the host tenant
// contoso.example, and a session of one never opens the other.
//
//	host tenants:    contoso.example       (the host name alone, as before)
//	path tenants:    path:acme
//	static tenants:  static:docs
//	a console:       console:console
//	with a namespace, any of them after "NS/": partners/path:acme
//
// The bare id is what backends, pages and metrics see (X-Auth-Tenant).

const (
	pathKeyPrefix    = "path:"
	staticKeyPrefix  = "static:"
	consoleKeyPrefix = "console:"
)

// ConsoleMode is the mode of a gateway console's own tenant, which its
// admins sign in to: no host, path or static tenant shares its key.
const ConsoleMode = "console"

// TenantKey is the key of tenant id in mode ("host", "path" or "static"),
// in namespace ns ("" for none).
func TenantKey(ns, mode, id string) string {
	k := id
	switch mode {
	case "path":
		k = pathKeyPrefix + id
	case "static":
		k = staticKeyPrefix + id
	case ConsoleMode:
		k = consoleKeyPrefix + id
	}
	if ns != "" {
		k = ns + "/" + k
	}
	return k
}

// IsConsole reports whether key is a console's own tenant.
func IsConsole(key string) bool { return strings.HasPrefix(withoutNamespace(key), consoleKeyPrefix) }

// withoutNamespace is the key with its "NS/" cut off.
func withoutNamespace(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// TenantName is the bare id of a tenant key.
func TenantName(key string) string {
	key = withoutNamespace(key)
	for _, p := range []string{pathKeyPrefix, staticKeyPrefix, consoleKeyPrefix} {
		if id, ok := strings.CutPrefix(key, p); ok {
			return id
		}
	}
	return key
}
