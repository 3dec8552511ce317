package flow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
)

// newCode returns n uniformly random ASCII digits from crypto/rand.
func newCode(n int) (string, error) {
	// One big uniform number below 10^n, so no digit is biased by a modulo.
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", err
	}
	s := v.String()
	return strings.Repeat("0", n-len(s)) + s, nil
}

// normalizeCode returns the code a person typed with the spaces and dashes they may
// add for readability removed, and false unless what is left is exactly n ASCII
// digits. Other scripts' digits are refused rather than mapped.
func normalizeCode(typed string, n int) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(typed); i++ {
		c := typed[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '\t':
		default:
			return "", false
		}
	}
	if b.Len() != n {
		return "", false
	}
	return b.String(), true
}

// hashCode binds a code to its challenge under a server key, so the store holds
// nothing that reveals the code or verifies it for another challenge.
func hashCode(key []byte, tenant, challengeID, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tenant))
	m.Write([]byte{0})
	m.Write([]byte(challengeID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
