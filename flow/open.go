package flow

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"sync"
)

// maxSealedLen is securecookie's default maximum length of an encoded value.
const maxSealedLen = 4096

var errSealedValue = errors.New("the value is not one this server sealed, or it was altered")

// opener reads the values securecookie writes, for one secret, without its
// per-call allocations (a fresh HMAC, several buffers, a split): this runs on
// a signed-in guest's first request to a node. The format is
//
//	base64url( date "|" base64url( iv ‖ AES-CTR(plaintext) ) "|" HMAC-SHA256(name "|" date "|" value) )
//
// and what opens here is exactly what securecookie.Decode opens for the same
// keys (TestOpenerAgreesWithSecurecookie, FuzzSealerOpen).
type opener struct {
	block   cipher.Block
	scratch sync.Pool // *openScratch, each with its own HMAC under the hash key
}

type openScratch struct {
	mac   hash.Hash
	sum   [sha256.Size]byte
	raw   [maxSealedLen]byte
	outer [maxSealedLen * 3 / 4]byte
	inner [maxSealedLen * 3 / 4]byte
}

func newOpener(hashKey, blockKey []byte) *opener {
	block, err := aes.NewCipher(blockKey)
	if err != nil {
		panic("aes: " + err.Error()) // blockKey is a 32-byte derived key
	}
	o := &opener{block: block}
	o.scratch.New = func() any { return &openScratch{mac: hmac.New(sha256.New, hashKey)} }
	return o
}

// open authenticates and decrypts value sealed for name and hands the
// plaintext to use, which must not keep it: the buffer is reused.
func (o *opener) open(name, value string, use func([]byte) error) error {
	if len(value) > maxSealedLen {
		return errSealedValue
	}
	sc := o.scratch.Get().(*openScratch)
	defer o.scratch.Put(sc)

	// Copied, not converted: []byte(value) would allocate on every call.
	n, err := base64.URLEncoding.Decode(sc.outer[:], sc.raw[:copy(sc.raw[:], value)])
	if err != nil {
		return errSealedValue
	}
	b := sc.outer[:n]
	// "date|value|mac": the MAC is binary and may hold '|', so cut twice.
	i := bytes.IndexByte(b, '|')
	if i < 0 {
		return errSealedValue
	}
	j := bytes.IndexByte(b[i+1:], '|')
	if j < 0 {
		return errSealedValue
	}
	signed, date, sealed, mac := b[:i+1+j], b[:i], b[i+1:i+1+j], b[i+1+j+1:]

	// The MAC covers name "|" date "|" value, written in one piece into the
	// scratch buffer (raw is free once decoded) so nothing escapes.
	sc.mac.Reset()
	sc.mac.Write(append(append(append(sc.raw[:0], name...), '|'), signed...))
	if !hmac.Equal(mac, sc.mac.Sum(sc.sum[:0])) {
		return errSealedValue
	}
	// The stamp is authenticated but not checked against an age: sealed
	// values carry their own expiry. securecookie still requires a number.
	if _, err := strconv.ParseInt(string(date), 10, 64); err != nil {
		return errSealedValue
	}
	n, err = base64.URLEncoding.Decode(sc.inner[:], sealed)
	if err != nil || n <= aes.BlockSize {
		return errSealedValue
	}
	iv, text := sc.inner[:aes.BlockSize], sc.inner[aes.BlockSize:n]
	cipher.NewCTR(o.block, iv).XORKeyStream(text, text)
	return use(text)
}
