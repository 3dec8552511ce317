package emailotp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// csrfKey makes and checks the forms' CSRF tokens.
type csrfKey []byte

// token binds a form to this browser (its pending nonce or session id) and
// tenant, so another site can't post it on the guest's behalf.
func (k csrfKey) token(t tenant, binding string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(t.Key))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (k csrfKey) ok(t tenant, binding, token string) bool {
	return binding != "" && hmac.Equal([]byte(k.token(t, binding)), []byte(token))
}

// fromThisBrowser reports whether a form or a script's request came from
// this site (not a cross-origin post) carrying the token of binding.
func (k csrfKey) fromThisBrowser(r *http.Request, t tenant, binding, token string) bool {
	return crossOrigin.Check(r) == nil && k.ok(t, binding, token)
}
