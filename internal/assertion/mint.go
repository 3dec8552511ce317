package assertion

import (
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Claims is what an assertion says.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"` // the address
	Audience  []string `json:"aud,omitempty"`
	Email     string   `json:"email"`
	Tenant    string   `json:"tenant"`
	SessionID string   `json:"sid"`
	Status    string   `json:"status,omitempty"` // the guest's directory status
	Methods   []string `json:"amr"`              // ["otp"], ["pop"] (passkey), ["fed"] (identity provider)
	IDP       string   `json:"idp,omitempty"`    // the identity provider, after its sign-in
	IssuedAt  int64    `json:"iat"`
	Expiry    int64    `json:"exp"`
	AuthTime  int64    `json:"auth_time"` // when the session began
}

// Minter signs assertions and remembers them per session.
type Minter struct {
	ring  atomic.Pointer[Ring]
	cache *lru.Cache[cacheKey, minted]
}

type cacheKey struct{ sid, issuer, status string }

type minted struct {
	token   string
	renewAt int64 // Unix seconds: mint afresh from here on
	keyID   string
}

// NewMinter returns a minter over ring that remembers up to size sessions'
// assertions.
func NewMinter(ring *Ring, size int) *Minter {
	c, _ := lru.New[cacheKey, minted](max(size, 1))
	m := &Minter{cache: c}
	m.SetRing(ring)
	return m
}

// SetRing replaces the keys (after a rotation or a reload).
func (m *Minter) SetRing(r *Ring) {
	r.Schedule = r.Schedule.withDefaults()
	m.ring.Store(r)
}

// Ring is the current keys.
func (m *Minter) Ring() *Ring { return m.ring.Load() }

// Mint returns the assertion for a session at now, signed afresh only when
// the remembered one is in its last fifth of life, was signed by a key that
// no longer signs, or says another status. c's times are set here.
func (m *Minter) Mint(c Claims, now time.Time) (string, error) {
	r := m.ring.Load()
	key, err := r.signing(now)
	if err != nil {
		return "", err
	}
	ck := cacheKey{c.SessionID, c.Issuer, c.Status}
	if got, ok := m.cache.Get(ck); ok && now.Unix() < got.renewAt && got.keyID == key.ID {
		return got.token, nil
	}
	ttl := r.Schedule.TTL
	c.IssuedAt, c.Expiry = now.Unix(), now.Add(ttl).Unix()
	if c.Methods == nil {
		c.Methods = []string{"otp"}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), key.ID))
	if err != nil {
		return "", err
	}
	token, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", err
	}
	m.cache.Add(ck, minted{token: token, renewAt: now.Add(ttl - ttl/5).Unix(), keyID: key.ID})
	return token, nil
}
