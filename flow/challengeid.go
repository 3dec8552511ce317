package flow

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// A challenge id is "<identity tag>.<browser slot>.<random>":
//   - the identity tag names tenant and address, so a store can keep all of
//     a guest's challenges in one place (one Redis Cluster slot);
//   - the browser slot names the browser that asked (from its pending
//     cookie), so a store keeps one live challenge per identity and
//     browser: a new code from a browser replaces that browser's older code
//     and no other. A stranger who asks for a code for someone's address
//     can't cancel the code the owner is typing in another browser;
//   - the random part makes every id unguessable and new.

// IdentityTag names a tenant and address in 128 bits.
func IdentityTag(tenant, addr string) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + addr))
	return hex.EncodeToString(h[:16])
}

// browserSlot names a browser in 64 bits, from an opaque value that browser
// alone holds (its pending cookie's nonce); "" gets a slot of its own.
func browserSlot(browser string) string {
	if browser == "" {
		browser = randomID()
	}
	h := sha256.Sum256([]byte("browser\x00" + browser))
	return hex.EncodeToString(h[:8])
}

// newChallengeID returns a fresh id for a challenge of tag asked for by browser.
func newChallengeID(tag, browser string) string {
	return tag + "." + browserSlot(browser) + "." + randomID()
}

// IdentityTagOf returns the identity tag a challenge id starts with, or false
// for an id that has none (which no store can hold).
func IdentityTagOf(id string) (string, bool) {
	tag, _, ok := strings.Cut(id, ".")
	if !ok || !isHex(tag, 32) {
		return "", false
	}
	return tag, true
}

// ChallengeKeyOf returns what a store keeps one live challenge under: the
// identity tag and the browser slot ("<tag>.<slot>"), or false for an id of
// any other shape.
func ChallengeKeyOf(id string) (string, bool) {
	tag, ok := IdentityTagOf(id)
	if !ok {
		return "", false
	}
	slot, random, ok := strings.Cut(id[len(tag)+1:], ".")
	if !ok || !isHex(slot, 16) || random == "" {
		return "", false
	}
	return tag + "." + slot, true
}

func isHex(s string, n int) bool {
	return len(s) == n && strings.Trim(s, "0123456789abcdef") == ""
}
