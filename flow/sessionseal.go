package flow

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// The session cookie rides on every request a signed-in guest makes, so its
// sealed form is as small as its content allows (about 90 characters for a
// 15-character address, against 204 in securecookie's format):
//
//	base64url( nonce(12) | AES-256-GCM( format | id | issued | lifetime | email ) )
//
// with the cookie's name and the tenant as associated data: a value moved to
// another cookie or tenant fails authentication, and the tenant need not be
// carried. The id goes as its 16 random bytes, times as varints, the address
// as the rest. Each secret of a rotation has its own key (HKDF "aead
// session"); the newest seals. AES-GCM is the standard library's, the same
// primitive TLS uses; securecookie's format is still opened (see
// OpenSession) so an upgrade signs nobody out.

const (
	sealedRawID   = 2 // the id is 16 bytes that base64url spells in 22 characters
	sealedTextID  = 3 // any other id: uvarint length, then its bytes
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
	b := make([]byte, 0, 1+binary.MaxVarintLen64*3+len(s.ID)+len(s.Email))
	if raw, err := base64.RawURLEncoding.DecodeString(s.ID); err == nil && len(raw) == 16 && base64.RawURLEncoding.EncodeToString(raw) == s.ID {
		b = append(append(b, sealedRawID), raw...)
	} else {
		b = append(b, sealedTextID)
		b = binary.AppendUvarint(b, uint64(len(s.ID)))
		b = append(b, s.ID...)
	}
	b = binary.AppendUvarint(b, uint64(s.IssuedAt))
	b = binary.AppendUvarint(b, uint64(s.ExpiresAt-s.IssuedAt))
	return append(b, s.Email...), nil
}

func parseSessionPlaintext(b []byte, tenantID string) (Session, error) {
	if len(b) == 0 {
		return Session{}, errSealedSession
	}
	var s Session
	switch b[0] {
	case sealedRawID:
		if len(b) < 17 {
			return Session{}, errSealedSession
		}
		s.ID, b = base64.RawURLEncoding.EncodeToString(b[1:17]), b[17:]
	case sealedTextID:
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return Session{}, errSealedSession
		}
		s.ID, b = string(b[1+k:1+k+int(n)]), b[1+k+int(n):]
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
	s.IssuedAt, s.ExpiresAt = int64(issued), int64(issued+lifetime)
	s.Email, s.Tenant = string(b[k+k2:]), tenantID
	return s, nil
}

// sealSession seals s with the newest key.
func sealSession(aead cipher.AEAD, name string, s Session) (string, error) {
	plain, err := sessionPlaintext(s)
	if err != nil {
		return "", err
	}
	out := make([]byte, gcmNonceSize, gcmNonceSize+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", err
	}
	out = aead.Seal(out, out[:gcmNonceSize], plain, []byte(name))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// openSession opens a value sealed by sealSession under any key of the ring.
func openSession(aeads []cipher.AEAD, name, tenantID, value string) (Session, error) {
	if len(value) > 4096 {
		return Session{}, errSealedSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < sealedMinimum {
		return Session{}, errSealedSession
	}
	nonce, box := raw[:gcmNonceSize], raw[gcmNonceSize:]
	for _, aead := range aeads {
		if plain, err := aead.Open(nil, nonce, box, []byte(name)); err == nil {
			return parseSessionPlaintext(plain, tenantID)
		}
	}
	return Session{}, errSealedSession
}
