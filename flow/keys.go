package flow

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/gorilla/securecookie"
)

// MinSecretLen is the shortest server secret accepted, in bytes.
const MinSecretLen = 32

// Keys holds the server secrets, newest first. Each purpose gets its own key
// derived with HKDF, so one secret serves cookies, code hashes and CSRF tokens
// without any two sharing a key. The newest secret signs; all of them verify,
// so a rotation signs nobody out and removing a secret ends its sessions.
type Keys struct {
	secrets [][]byte
}

// NewKeys checks the secrets (newest first) and returns the key ring.
func NewKeys(secrets ...[]byte) (*Keys, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no secret given")
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("secret %d is %d bytes; at least %d random bytes are needed", i+1, len(s), MinSecretLen)
		}
	}
	return &Keys{secrets: secrets}, nil
}

// NewSecret returns a fresh random secret of MinSecretLen bytes.
func NewSecret() []byte {
	b := make([]byte, MinSecretLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // rand.Read never fails on supported platforms
	}
	return b
}

func derive(secret []byte, purpose string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "caddy-email-otp "+purpose, n)
	if err != nil {
		panic("hkdf: " + err.Error()) // only for n beyond 255*32 bytes
	}
	return k
}

// MAC returns the newest secret's key for purpose, for HMACs that are checked
// within minutes of being made (code hashes, CSRF tokens).
func (k *Keys) MAC(purpose string) []byte {
	return derive(k.secrets[0], "mac "+purpose, 32)
}

// Sealer returns a sealer whose values are authenticated (HMAC-SHA256) and
// encrypted (AES-256) under keys for purpose, one pair per secret.
func (k *Keys) Sealer(purpose string) *Sealer {
	pairs := make([][]byte, 0, 2*len(k.secrets))
	for _, s := range k.secrets {
		pairs = append(pairs, derive(s, "hash "+purpose, 32), derive(s, "block "+purpose, 32))
	}
	codecs := securecookie.CodecsFromPairs(pairs...)
	for _, c := range codecs {
		// Expiry is enforced from the sealed value itself (no sliding past it);
		// securecookie's own 30-day stamp check would cap long sessions.
		c.(*securecookie.SecureCookie).MaxAge(0).SetSerializer(securecookie.JSONEncoder{})
	}
	return &Sealer{codecs: codecs}
}

// RecordSealer is Sealer for records kept on the server (queued emails in
// Redis), which may be larger than any cookie.
func (k *Keys) RecordSealer(purpose string) *Sealer {
	s := k.Sealer(purpose)
	for _, c := range s.codecs {
		c.(*securecookie.SecureCookie).MaxLength(0)
	}
	return s
}

// Sealer turns values into opaque strings fit for a cookie and back, with
// securecookie (JSON inside): the pending sign-in, the device marker and
// queued emails in Redis. Sessions have a compact form of their own
// (sessionseal.go).
type Sealer struct {
	codecs []securecookie.Codec
}

// Seal encodes v for the cookie called name (the name is authenticated too, so a
// value can't be moved to another cookie).
func (s *Sealer) Seal(name string, v any) (string, error) {
	return securecookie.EncodeMulti(name, v, s.codecs...)
}

// Open decodes a value sealed under name into dst; any tampering, truncation or
// unknown key is an error.
func (s *Sealer) Open(name, value string, dst any) error {
	if securecookie.DecodeMulti(name, value, dst, s.codecs...) != nil {
		return errSealedValue
	}
	return nil
}

// SealName binds a sealed value to its cookie and tenant: a value moved to
// another cookie or tenant fails authentication.
func SealName(cookie, tenantID string) string { return cookie + "|" + tenantID }

var errSealedValue = errors.New("the value is not one this server sealed, or it was altered")

// EncodeSecret and DecodeSecret are the text form of a secret in config and storage.
func EncodeSecret(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeSecret accepts standard or URL base64, padded or not.
func DecodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Signer makes short authenticated tokens for purpose: a 128-bit HMAC-SHA256
// tag over the parts, for links that must fit in a line of an email. The
// newest secret signs; every secret verifies, as for sealed values.
type Signer struct{ keys [][]byte }

// Signer returns the signer of purpose.
func (k *Keys) Signer(purpose string) *Signer {
	s := &Signer{}
	for _, secret := range k.secrets {
		s.keys = append(s.keys, derive(secret, "sign "+purpose, 32))
	}
	return s
}

// Sign returns the tag of parts (base64url, 22 characters).
func (s *Signer) Sign(parts ...string) string { return s.tag(s.keys[0], parts) }

// Verify reports whether tag was made by Sign for exactly these parts.
func (s *Signer) Verify(tag string, parts ...string) bool {
	for _, k := range s.keys {
		if hmac.Equal([]byte(tag), []byte(s.tag(k, parts))) {
			return true
		}
	}
	return false
}

func (s *Signer) tag(key []byte, parts []string) string {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
		m.Write([]byte(strconv.Itoa(len(p)) + ":" + p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}
