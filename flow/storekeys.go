package flow

import "strings"

// Names of the flags and counters the Service keeps in its Store, each
// followed by what it is about (an identity tag or limit scope, a client IP,
// a tenant key, a challenge id).
const (
	// Sending limits: they change on every send.
	keyCooldown   = "cooldown:"    // flag: no new code for this scope yet
	keySendAddr   = "send:addr:"   // counter: codes per address (scope)
	keySendIP     = "send:ip:"     // counter: codes per client IP
	keySendTenant = "send:tenant:" // counter: codes per tenant

	// Security state: what stops guessing and what a guest asked for. A
	// store should keep it where a flood of sends can't evict it.
	keyFail      = "fail:"       // counter: wrong tries in a row (scope)
	keyLock      = "lock:"       // flag: no codes after LockAfter wrong tries
	keyBackoff   = "backoff:"    // flag: no codes for a while after a dead code
	keyNotMe     = "notme:"      // flag: the owner said "this wasn't me"
	keyNotMeUsed = "notme-used:" // counter: uses of a "this wasn't me" link
)

// IsSecurityKey reports whether a flag or counter key is security state
// (wrong-try counts, locks, back-offs, "this wasn't me"), which sends never
// write: a store that bounds its memory should keep these apart from the
// sending counters and cooldowns, so a flood of sends can't evict a lock.
func IsSecurityKey(key string) bool {
	for _, p := range []string{keyFail, keyLock, keyBackoff, keyNotMe, keyNotMeUsed} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}
