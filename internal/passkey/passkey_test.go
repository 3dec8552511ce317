package passkey

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/store/memstore"
)

// device is a software authenticator: one P-256 passkey, signing what the
// standard says an authenticator signs. It stands in for the browser where
// the browser can't be (a benchmark); the Chromium tests use the real one.
type device struct {
	key     *ecdsa.PrivateKey
	id      []byte
	handle  []byte
	counter uint32
}

func newDevice(t testing.TB, handle []byte) *device {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &device{key: key, id: id, handle: handle}
}

// passkey is the device's credential as the directory records it.
func (d *device) passkey(t testing.TB) directory.Passkey {
	pub, err := d.key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 | X | Y
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: raw[1:33], YCoord: raw[33:],
	})
	if err != nil {
		t.Fatal(err)
	}
	return directory.Passkey{ID: d.id, PublicKey: cose, UserVerified: true, CreatedAt: time.Now().Add(-time.Hour), Device: "test"}
}

// answer is the device's answer to sign-in options, for origin.
func (d *device) answer(t testing.TB, options []byte, origin string) []byte {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatal(err)
	}
	client, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": o.PublicKey.Challenge, "origin": origin, "crossOrigin": false})
	u, _ := urlHost(origin)
	rp := sha256.Sum256([]byte(u))
	d.counter++
	auth := append(rp[:], 0x05) // user present, user verified
	auth = binary.BigEndian.AppendUint32(auth, d.counter)
	clientHash := sha256.Sum256(client)
	digest := sha256.Sum256(append(append([]byte{}, auth...), clientHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, d.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	b := base64.RawURLEncoding.EncodeToString
	out, _ := json.Marshal(map[string]any{
		"id": b(d.id), "rawId": b(d.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b(client), "authenticatorData": b(auth), "signature": b(sig), "userHandle": b(d.handle)},
	})
	return out
}

func urlHost(origin string) (string, error) { return Site{Origin: origin}.RPID(), nil }

// guestWithPasskey records a redeemed guest holding dev's passkey.
func guestWithPasskey(t testing.TB, dir *directory.Directory, tenant, email string) *device {
	ctx, now := context.Background(), time.Now()
	if _, err := dir.RecordSignIn(ctx, tenant, email, "otp", now); err != nil {
		t.Fatal(err)
	}
	handle, err := dir.PasskeyHandle(ctx, tenant, email, now)
	if err != nil {
		t.Fatal(err)
	}
	dev := newDevice(t, handle)
	if _, err := dir.AddPasskey(ctx, tenant, email, handle, dev.passkey(t), now); err != nil {
		t.Fatal(err)
	}
	return dev
}

func owner(dir *directory.Directory, tenant string) func([]byte) (Account, error) {
	return func(handle []byte) (Account, error) {
		g, err := dir.PasskeyOwner(context.Background(), tenant, handle)
		return AccountOf(g, ""), err
	}
}

var site = Site{Origin: "https://docs.example.com", Name: "Docs"}

func TestFinishSignIn(t *testing.T) {
	dir := directory.New(&certmagic.FileStorage{Path: t.TempDir()}, 100, time.Minute)
	dev := guestWithPasskey(t, dir, "docs.example.com", "ann@example.com")
	signIn := func(s Site, tenant string, answerOrigin string) (Account, directory.PasskeyUse, error) {
		options, c, err := BeginSignIn(s, tenant)
		if err != nil {
			t.Fatal(err)
		}
		return FinishSignIn(s, c, dev.answer(t, options, answerOrigin), owner(dir, tenant))
	}

	acct, use, err := signIn(site, "docs.example.com", site.Origin)
	if err != nil || acct.Email != "ann@example.com" || use.SignCount != 1 || !use.UserVerified {
		t.Fatalf("a good answer: %+v %+v %v", acct, use, err)
	}
	if _, _, err := signIn(site, "docs.example.com", "https://evil.example"); !errors.Is(err, ErrRefused) {
		t.Errorf("an answer signed for another origin: %v, want ErrRefused", err)
	}
	if _, _, err := signIn(site, "other.example.com", site.Origin); !errors.Is(err, ErrUnknownPasskey) {
		t.Errorf("another tenant's passkey: %v, want ErrUnknownPasskey", err)
	}
	// The directory still holds counter 0: an answer whose counter is not
	// above what is recorded is a clone's.
	if _, err := dir.RecordPasskeySignIn(context.Background(), "docs.example.com", "ann@example.com", use, time.Now(),
		func(directory.Guest, directory.Passkey) error { return nil }); err != nil {
		t.Fatal(err)
	}
	dev.counter = 0
	if _, _, err := signIn(site, "docs.example.com", site.Origin); !errors.Is(err, directory.ErrPasskeyCloned) {
		t.Errorf("a counter that went back: %v, want ErrPasskeyCloned", err)
	}
	options, c, _ := BeginSignIn(site, "docs.example.com")
	c.Session.Challenge = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if _, _, err := FinishSignIn(site, c, dev.answer(t, options, site.Origin), owner(dir, "docs.example.com")); !errors.Is(err, ErrRefused) {
		t.Errorf("an answer to another challenge: %v, want ErrRefused", err)
	}
}

// BenchmarkPasskeySignIn is a passkey sign-in's server work, begin and
// finish: the options, the ceremony kept and taken in the store, the
// answer's checks, the owner read and the use recorded in Caddy's file
// storage. The device's own signing is left out of the timing.
func BenchmarkPasskeySignIn(b *testing.B) {
	ctx := context.Background()
	dir := directory.New(&certmagic.FileStorage{Path: b.TempDir()}, 100, time.Minute)
	store := memstore.New(memstore.Limits{})
	dev := guestWithPasskey(b, dir, "docs.example.com", "ann@example.com")
	ok := func(directory.Guest, directory.Passkey) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		options, c, err := BeginSignIn(site, "docs.example.com")
		if err != nil {
			b.Fatal(err)
		}
		state, _ := c.Marshal()
		if err := store.SaveCeremony(ctx, "id", state, time.Now().Add(Lifetime)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		answer := dev.answer(b, options, site.Origin)
		b.StartTimer()
		state, err = store.TakeCeremony(ctx, "id", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if c, err = ParseCeremony(state); err != nil {
			b.Fatal(err)
		}
		acct, use, err := FinishSignIn(site, c, answer, owner(dir, "docs.example.com"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dir.RecordPasskeySignIn(ctx, "docs.example.com", acct.Email, use, time.Now(), ok); err != nil {
			b.Fatal(err)
		}
	}
}
