// Package assertion mints the signed statement a backend can check instead
// of trusting plain identity headers: a JWT (ES256) saying who signed in to
// which tenant, by which session, until when; and it publishes the public
// keys as a JWKS so the backend can verify it.
//
// Keys rotate on a schedule (Ring): a new key is published Lead before it
// signs, so every node and every backend's JWKS cache has it first, and an
// old key stays published until the last assertion it signed has expired.
// A session's assertion is minted once and reused until shortly before it
// expires, so a signed-in request costs no signature.
package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Schedule is how keys and assertions live.
type Schedule struct {
	// TTL is how long an assertion is valid. Default 5m.
	TTL time.Duration
	// Rotate is how long a key signs before the next one takes over.
	// Default 7 days.
	Rotate time.Duration
	// Lead is how long a new key is published before it signs: longer than
	// any node takes to reload keys and any backend caches the JWKS.
	// Default 1h.
	Lead time.Duration
}

func (s Schedule) withDefaults() Schedule {
	if s.TTL <= 0 {
		s.TTL = 5 * time.Minute
	}
	if s.Rotate <= 0 {
		s.Rotate = 7 * 24 * time.Hour
	}
	if s.Lead <= 0 {
		s.Lead = time.Hour
	}
	return s
}

// Key is one signing key.
type Key struct {
	ID      string
	Private *ecdsa.PrivateKey
	Created time.Time
}

// NewKey makes a P-256 key; its id is a digest of the public key.
func NewKey(now time.Time) (Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Key{}, err
	}
	return keyOf(priv, now)
}

func keyOf(priv *ecdsa.PrivateKey, created time.Time) (Key, error) {
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return Key{}, err
	}
	sum := sha256.Sum256(pub)
	return Key{ID: base64.RawURLEncoding.EncodeToString(sum[:12]), Private: priv, Created: created.UTC().Truncate(time.Second)}, nil
}

// Ring is the keys, newest first, under a Schedule.
type Ring struct {
	Keys     []Key
	Schedule Schedule
}

// signing is the key that signs at now: the newest one published for at
// least Lead, or, while none is, the oldest.
func (r *Ring) signing(now time.Time) (Key, error) {
	if len(r.Keys) == 0 {
		return Key{}, errors.New("assertion: no signing key")
	}
	for _, k := range r.Keys {
		if !now.Before(k.Created.Add(r.Schedule.Lead)) {
			return k, nil
		}
	}
	return r.Keys[len(r.Keys)-1], nil
}

// Rotate brings the ring up to date at now: a new key when the newest one
// will have signed for Rotate by the time the new one may sign, and the
// keys no longer needed dropped. It reports whether anything changed (the
// caller then stores the ring).
func (r *Ring) Rotate(now time.Time) (bool, error) {
	r.Schedule = r.Schedule.withDefaults()
	changed := false
	if r.needsKey(now) {
		k, err := NewKey(now)
		if err != nil {
			return false, err
		}
		r.Keys = append([]Key{k}, r.Keys...)
		changed = true
	}
	if i := r.unneeded(now); i > 0 {
		r.Keys = r.Keys[:i]
		changed = true
	}
	return changed, nil
}

// Due reports whether Rotate would change the ring at now, without making a
// key: callers check it before taking a lock.
func (r *Ring) Due(now time.Time) bool {
	r.Schedule = r.Schedule.withDefaults()
	return r.needsKey(now) || r.unneeded(now) > 0
}

// needsKey: the newest key will have signed for Rotate by the time a new
// one, made now, may sign.
func (r *Ring) needsKey(now time.Time) bool {
	return len(r.Keys) == 0 || !now.Before(r.Keys[0].Created.Add(r.Schedule.Rotate-r.Schedule.Lead))
}

// unneeded is the index of the first key nobody needs any more (0: none).
// A key stops signing when a newer one starts; its assertions live TTL
// longer; then nobody needs it, nor any older key.
func (r *Ring) unneeded(now time.Time) int {
	for i := 1; i < len(r.Keys); i++ {
		newerSigns := r.Keys[i-1].Created.Add(r.Schedule.Lead)
		if now.After(newerSigns.Add(r.Schedule.TTL)) {
			return i
		}
	}
	return 0
}

// JWKS is the public keys as a JSON Web Key Set.
func (r *Ring) JWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for _, k := range r.Keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.ID, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return json.Marshal(set)
}

// stored is a key as Marshal writes it.
type stored struct {
	ID      string    `json:"kid"`
	PKCS8   []byte    `json:"pkcs8"`
	Created time.Time `json:"created"`
}

// Marshal writes the keys (private: keep it where the gateway's other
// secrets are).
func (r *Ring) Marshal() ([]byte, error) {
	out := make([]stored, 0, len(r.Keys))
	for _, k := range r.Keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, err
		}
		out = append(out, stored{ID: k.ID, PKCS8: der, Created: k.Created})
	}
	return json.Marshal(out)
}

// Unmarshal reads keys Marshal wrote.
func Unmarshal(data []byte, s Schedule) (*Ring, error) {
	var in []stored
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("assertion keys: %w", err)
	}
	r := &Ring{Schedule: s.withDefaults()}
	for _, st := range in {
		priv, err := x509.ParsePKCS8PrivateKey(st.PKCS8)
		ec, ok := priv.(*ecdsa.PrivateKey)
		if err != nil || !ok {
			return nil, fmt.Errorf("assertion key %s: not an EC private key", st.ID)
		}
		k, err := keyOf(ec, st.Created)
		if err != nil {
			return nil, err
		}
		r.Keys = append(r.Keys, k)
	}
	return r, nil
}
