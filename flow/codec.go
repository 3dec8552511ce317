package flow

import (
	"crypto/cipher"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"

	lru "github.com/hashicorp/golang-lru/v2"
)

// serializer is securecookie's serializer for sealed values: values that
// marshal themselves to binary (a Session, in the sealed form sessions had
// before sessionseal.go's) take that compact form; others go as JSON.
type serializer struct{}

func (serializer) Serialize(src any) ([]byte, error) {
	if m, ok := src.(encoding.BinaryMarshaler); ok {
		return m.MarshalBinary()
	}
	return json.Marshal(src)
}

func (serializer) Deserialize(src []byte, dst any) error {
	if u, ok := dst.(encoding.BinaryUnmarshaler); ok {
		return u.UnmarshalBinary(src)
	}
	return json.Unmarshal(src, dst)
}

const sessionFormat = 1

var errSessionFormat = errors.New("sealed session has an unknown format")

// MarshalBinary is the session inside securecookie's seal, the form sessions
// issued before the compact one (sessionseal.go) carry: a version byte, three
// length-prefixed strings and two varints. Kept to open those until they
// expire.
func (s Session) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen16+len(s.ID)+len(s.Tenant)+len(s.Email)+2*binary.MaxVarintLen64)
	b = append(b, sessionFormat)
	for _, f := range []string{s.ID, s.Tenant, s.Email} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendVarint(b, s.IssuedAt)
	return binary.AppendVarint(b, s.ExpiresAt), nil
}

// UnmarshalBinary reads MarshalBinary's form.
func (s *Session) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != sessionFormat {
		return errSessionFormat
	}
	// One string for the three fields: one allocation, not three.
	all := string(b[1:])
	var fields [3]string
	pos := 0
	for i := range fields {
		n, k := binary.Uvarint(b[1+pos:])
		if k <= 0 || uint64(len(all)-pos-k) < n {
			return errSessionFormat
		}
		fields[i] = all[pos+k : pos+k+int(n)]
		pos += k + int(n)
	}
	b = b[1+pos:]
	issued, k := binary.Varint(b)
	if k <= 0 {
		return errSessionFormat
	}
	expires, k2 := binary.Varint(b[k:])
	if k2 <= 0 || k+k2 != len(b) {
		return errSessionFormat
	}
	*s = Session{ID: fields[0], Tenant: fields[1], Email: fields[2], IssuedAt: issued, ExpiresAt: expires}
	return nil
}

// SealName binds a sealed value to its cookie and tenant: a value moved to
// another cookie or tenant fails authentication.
func SealName(cookie, tenantID string) string { return cookie + "|" + tenantID }

// SessionSealer seals sessions and opens them through a cache of values it
// has opened before: a signed-in guest's every request presents the same
// value, and the cache spares the HMAC, the decryption and the parsing. The
// key is the whole sealed value with the cookie and tenant it was opened for,
// so only the exact bytes that were verified for them hit the cache; expiry,
// sign-out and the guest's record are still checked on every request by
// Service.Authenticate.
type SessionSealer struct {
	*Sealer // securecookie's format, still opened (see OpenSession)
	aeads   []cipher.AEAD
	opened  *lru.Cache[openedKey, Session]
}

type openedKey struct{ cookie, tenantID, value string }

// SessionSealer returns a sealer for sessions that remembers up to size opened values.
func (k *Keys) SessionSealer(size int) *SessionSealer {
	c, _ := lru.New[openedKey, Session](max(size, 1))
	return &SessionSealer{Sealer: k.Sealer("session"), aeads: newSessionAEADs(k), opened: c}
}

// SealSession seals s for the cookie called cookie on tenant tenantID, in
// the compact form (see sessionseal.go); the tenant is bound, not carried.
func (s *SessionSealer) SealSession(cookie, tenantID string, sess Session) (string, error) {
	if sess.Tenant != tenantID {
		return "", errors.New("sealing a session for another tenant")
	}
	return sealSession(s.aeads[0], sealedSessionAD(cookie, tenantID), sess)
}

// OpenSession opens a value of the cookie called cookie on tenant tenantID.
// A value seen before costs a cache lookup and no allocation.
func (s *SessionSealer) OpenSession(cookie, tenantID, value string) (Session, error) {
	key := openedKey{cookie, tenantID, value}
	if sess, ok := s.opened.Get(key); ok {
		return sess, nil
	}
	sess, err := openSession(s.aeads, cookie, tenantID, value)
	if err != nil {
		// securecookie's format, which sessions issued before the compact
		// one carry: accepted until the last of them has expired (one
		// session_ttl after the upgrade; drop this then).
		var legacy Session
		if s.Open(SealName(cookie, tenantID), value, &legacy) != nil {
			return Session{}, err
		}
		sess = legacy
	}
	s.opened.Add(key, sess)
	return sess, nil
}
