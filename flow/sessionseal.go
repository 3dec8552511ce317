package flow

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
)

// The session cookie rides on every request a signed-in guest makes, so its
// sealed form is as small as its content allows (about 90 characters for a
// 15-character address; securecookie's format, which the other cookies use,
// would take 204):
//
//	base64url( nonce(12) | AES-256-GCM( format | id | issued | lifetime | [method] | email ) )
//
// with the cookie's name and the tenant as associated data: a value moved to
// another cookie or tenant fails authentication, and the tenant need not be
// carried. The id goes as its 16 random bytes, times as varints, the address
// as the rest; a sign-in by anything but a code sets withMethod in the format
// byte and carries its Method as a uvarint length and its bytes. Each secret of a rotation has its own key (HKDF "aead
// session"); the newest seals. AES-GCM is the standard library's, the same
// primitive TLS uses.

const (
	sealedRawID   = 2    // the id is 16 bytes that base64url spells in 22 characters
	sealedTextID  = 3    // any other id: uvarint length, then its bytes
	withMethod    = 0x80 // or'd into the format: the Method follows the lifetime
	gcmNonceSize  = 12
	sealedMinimum = gcmNonceSize + 16 + 1 // nonce, tag, format byte
)

var errSealedSession = errors.New("sealed session does not open")

func newSessionAEADs(k *Keys) []cipher.AEAD {
	aeads := make([]cipher.AEAD, len(k.secrets))
	for i, s := range k.secrets {
		block, err := aes.NewCipher(derive(s, "aead session", 32))
		if err != nil {
			panic("aes: " + err.Error()) // 32-byte keys never fail
		}
		if aeads[i], err = cipher.NewGCM(block); err != nil {
			panic("gcm: " + err.Error())
		}
	}
	return aeads
}

// sessionPlaintext is the compact form inside the seal.
func sessionPlaintext(s Session) ([]byte, error) {
	if s.ExpiresAt < s.IssuedAt || s.IssuedAt < 0 {
		return nil, errors.New("session times out of order")
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64*4+len(s.ID)+len(s.Method)+len(s.Email))
	if raw, err := base64.RawURLEncoding.DecodeString(s.ID); err == nil && len(raw) == 16 && base64.RawURLEncoding.EncodeToString(raw) == s.ID {
		b = append(append(b, sealedRawID), raw...)
	} else {
		b = append(b, sealedTextID)
		b = binary.AppendUvarint(b, uint64(len(s.ID)))
		b = append(b, s.ID...)
	}
	b = binary.AppendUvarint(b, uint64(s.IssuedAt))
	b = binary.AppendUvarint(b, uint64(s.ExpiresAt-s.IssuedAt))
	if s.Method != "" {
		b[0] |= withMethod
		b = binary.AppendUvarint(b, uint64(len(s.Method)))
		b = append(b, s.Method...)
	}
	return append(b, s.Email...), nil
}

func parseSessionPlaintext(b []byte, tenantID string) (Session, error) {
	if len(b) == 0 {
		return Session{}, errSealedSession
	}
	var id []byte // raw: spelled in base64url below
	var text string
	hasMethod := b[0]&withMethod != 0
	switch b[0] &^ withMethod {
	case sealedRawID:
		if len(b) < 17 {
			return Session{}, errSealedSession
		}
		id, b = b[1:17], b[17:]
	case sealedTextID:
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return Session{}, errSealedSession
		}
		text, b = string(b[1+k:1+k+int(n)]), b[1+k+int(n):]
	default:
		return Session{}, errSealedSession
	}
	issued, k := binary.Uvarint(b)
	if k <= 0 || issued > 1<<62 {
		return Session{}, errSealedSession
	}
	lifetime, k2 := binary.Uvarint(b[k:])
	if k2 <= 0 || lifetime > 1<<62 {
		return Session{}, errSealedSession
	}
	b = b[k+k2:]
	s := Session{Tenant: tenantID, IssuedAt: int64(issued), ExpiresAt: int64(issued + lifetime)}
	if hasMethod {
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > uint64(len(b)-k) {
			return Session{}, errSealedSession
		}
		if m := b[k : k+int(n)]; string(m) == MethodPasskey {
			s.Method = MethodPasskey // no allocation for the common one
		} else {
			s.Method = string(m)
		}
		b = b[k+int(n):]
	}
	email := b
	if id == nil {
		s.ID, s.Email = text, string(email)
		return s, nil
	}
	// The id's spelling and the address share one allocation.
	var both strings.Builder
	idLen := base64.RawURLEncoding.EncodedLen(len(id))
	both.Grow(idLen + len(email))
	var spelled [24]byte
	base64.RawURLEncoding.Encode(spelled[:idLen], id)
	both.Write(spelled[:idLen])
	both.Write(email)
	all := both.String()
	s.ID, s.Email = all[:idLen], all[idLen:]
	return s, nil
}

// sealedSessionAD is the associated data binding a sealed session to its
// cookie and tenant: the same words as SealName, as bytes.
func sealedSessionAD(cookie, tenantID string) []byte {
	ad := make([]byte, 0, len(cookie)+1+len(tenantID))
	return append(append(append(ad, cookie...), '|'), tenantID...)
}

// sealSession seals s with the newest key.
func sealSession(aead cipher.AEAD, ad []byte, s Session) (string, error) {
	plain, err := sessionPlaintext(s)
	if err != nil {
		return "", err
	}
	out := make([]byte, gcmNonceSize, gcmNonceSize+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", err
	}
	out = aead.Seal(out, out[:gcmNonceSize], plain, ad)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// openSession opens a value sealed by sealSession under any key of the ring,
// decrypting in place in the one buffer the value is decoded into.
func openSession(aeads []cipher.AEAD, cookie, tenantID, value string) (Session, error) {
	if len(value) > 4096 {
		return Session{}, errSealedSession
	}
	raw := make([]byte, base64.RawURLEncoding.DecodedLen(len(value)))
	n, err := base64.RawURLEncoding.Decode(raw, []byte(value))
	if err != nil || n < sealedMinimum {
		return Session{}, errSealedSession
	}
	raw = raw[:n]
	nonce, box := raw[:gcmNonceSize], raw[gcmNonceSize:]
	ad := sealedSessionAD(cookie, tenantID)
	for _, aead := range aeads {
		// A failed Open leaves dst unspecified: decrypt into a copy when
		// another key is still to be tried.
		dst := box[:0]
		if len(aeads) > 1 {
			dst = nil
		}
		if plain, err := aead.Open(dst, nonce, box, ad); err == nil {
			return parseSessionPlaintext(plain, tenantID)
		}
	}
	return Session{}, errSealedSession
}

// SessionSealer seals sessions and opens them through a cache of values it
// has opened before: a signed-in guest's every request presents the same
// value, and the cache spares the HMAC, the decryption and the parsing. The
// key is the whole sealed value with the cookie and tenant it was opened for,
// so only the exact bytes that were verified for them hit the cache; expiry,
// sign-out and the guest's record are still checked on every request by
// Service.Authenticate.
type SessionSealer struct {
	aeads  []cipher.AEAD
	opened *lru.Cache[openedKey, Session]
}

type openedKey struct{ cookie, tenantID, value string }

// SessionSealer returns a sealer for sessions that remembers up to size opened values.
func (k *Keys) SessionSealer(size int) *SessionSealer {
	c, _ := lru.New[openedKey, Session](max(size, 1))
	return &SessionSealer{aeads: newSessionAEADs(k), opened: c}
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
		return Session{}, err
	}
	s.opened.Add(key, sess)
	return sess, nil
}
