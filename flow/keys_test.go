package flow

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestSealerRotation(t *testing.T) {
	oldSecret, newSecret := NewSecret(), NewSecret()
	oldKeys, _ := NewKeys(oldSecret)
	rotated, _ := NewKeys(newSecret, oldSecret)
	onlyNew, _ := NewKeys(newSecret)

	v, err := oldKeys.Sealer("session").Seal("c|t", Session{Email: "a@b.co"})
	if err != nil {
		t.Fatal(err)
	}
	var s Session
	if err := rotated.Sealer("session").Open("c|t", v, &s); err != nil || s.Email != "a@b.co" {
		t.Fatalf("old value under rotated keys: %v", err)
	}
	if err := onlyNew.Sealer("session").Open("c|t", v, &s); err == nil {
		t.Fatal("a removed secret still opens its values")
	}
	if err := rotated.Sealer("pending").Open("c|t", v, &s); err == nil {
		t.Fatal("a value sealed for one purpose opens for another")
	}
	if err := rotated.Sealer("session").Open("c|other", v, &s); err == nil {
		t.Fatal("a value sealed for one name opens under another")
	}
}

// TestSessionSealerCacheKeepsBinding: a value opened (and so cached) for one
// cookie and tenant does not open for another from the cache.
func TestSessionSealerCacheKeepsBinding(t *testing.T) {
	keys, _ := NewKeys(NewSecret())
	sealer := keys.SessionSealer(10)
	want := Session{ID: "s1", Tenant: "a.example", Email: "bob@contoso.com", ExpiresAt: 1}
	v, err := sealer.SealSession("email_otp_session", "a.example", want)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // first sight, then from the cache
		if got, err := sealer.OpenSession("email_otp_session", "a.example", v); err != nil || got != want {
			t.Fatalf("open %d: %+v, %v", i, got, err)
		}
	}
	for _, other := range [][2]string{{"email_otp_session", "b.example"}, {"email_otp_pending", "a.example"}, {"email_otp_session|a.example", ""}} {
		if _, err := sealer.OpenSession(other[0], other[1], v); err == nil {
			t.Errorf("the value opens for cookie %q, tenant %q", other[0], other[1])
		}
	}
	if _, err := sealer.OpenSession("email_otp_session", "a.example", v[:len(v)-2]); err == nil {
		t.Error("a truncated value opens")
	}
}

// TestSealedValuesRefuseEveryAlteration: a sealed value opens under every
// secret of a rotation, to what was sealed; under another name, or with any
// byte of its envelope flipped, it does not open; truncated or with a
// character replaced, it opens to nothing else (at most a non-canonical
// base64 spelling decodes to the same bytes).
func TestSealedValuesRefuseEveryAlteration(t *testing.T) {
	oldKeys, _ := NewKeys(NewSecret())
	rotated, _ := NewKeys(NewSecret(), oldKeys.secrets[0])
	want := Session{ID: "s", Tenant: "t", Email: "a@b.co", IssuedAt: -1, ExpiresAt: 1 << 40}
	value, err := oldKeys.Sealer("session").Seal("email_otp_session|t", want)
	if err != nil {
		t.Fatal(err)
	}
	for _, keys := range []*Keys{oldKeys, rotated} {
		sealer := keys.Sealer("session")
		opensTo := func(name, v string) (Session, bool) {
			var s Session
			return s, sealer.Open(name, v, &s) == nil
		}
		if got, ok := opensTo("email_otp_session|t", value); !ok || got != want {
			t.Fatalf("the sealed value opens to %+v, %v", got, ok)
		}
		if _, ok := opensTo("email_otp_session|other", value); ok {
			t.Error("a value opens under another name")
		}
		decoded, _ := base64.URLEncoding.DecodeString(value)
		for i := range decoded { // every byte flipped, inside the envelope
			b := append([]byte(nil), decoded...)
			b[i] ^= 0x20
			if _, ok := opensTo("email_otp_session|t", base64.URLEncoding.EncodeToString(b)); ok {
				t.Fatalf("byte %d flipped: the value still opens", i)
			}
		}
		for i := 0; i < len(value); i++ { // every truncation and replaced character
			for _, v := range []string{value[:i], value[:i] + "A" + value[i+1:]} {
				if got, ok := opensTo("email_otp_session|t", v); ok && got != want {
					t.Fatalf("an altered value opened to %+v", got)
				}
			}
		}
		if _, ok := opensTo("email_otp_session|t", strings.Repeat("A", 5000)); ok {
			t.Error("an oversized value opens")
		}
	}
}

func TestSignerTags(t *testing.T) {
	old, _ := NewKeys(bytes.Repeat([]byte{1}, 32))
	rotated, _ := NewKeys(bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 32))
	tag := old.Signer("notme").Sign("acme", "id.1")
	if len(tag) != 22 || !old.Signer("notme").Verify(tag, "acme", "id.1") {
		t.Fatalf("tag %q does not verify", tag)
	}
	if !rotated.Signer("notme").Verify(tag, "acme", "id.1") {
		t.Error("a tag of the older secret fails after a rotation")
	}
	for _, parts := range [][]string{{"globex", "id.1"}, {"acme", "id.2"}, {"acmei", "d.1"}, {"acme"}} {
		if old.Signer("notme").Verify(tag, parts...) {
			t.Errorf("the tag verifies for %q", parts)
		}
	}
	if old.Signer("other").Verify(tag, "acme", "id.1") {
		t.Error("a tag of one purpose verifies for another")
	}
}

// TestSessionCookieIsCompact: the sealed session carries what it must and no
// more (half of what securecookie's format would take), and rotation keeps
// old values working.
func TestSessionCookieIsCompact(t *testing.T) {
	oldKeys, _ := NewKeys(NewSecret())
	rotated, _ := NewKeys(NewSecret(), oldKeys.secrets[0])
	want := Session{ID: randomID(), Tenant: "contoso.example", Email: "ada@contoso.com", IssuedAt: 1795479427, ExpiresAt: 1795479427 + 86400}

	compact, err := oldKeys.SessionSealer(10).SealSession("email_otp_session", want.Tenant, want)
	if err != nil {
		t.Fatal(err)
	}
	securecookieForm, _ := oldKeys.Sealer("session").Seal(SealName("email_otp_session", want.Tenant), want)
	t.Logf("session cookie value: %d characters (securecookie's format: %d)", len(compact), len(securecookieForm))
	if len(compact) > 96 || 2*len(compact) > len(securecookieForm) {
		t.Errorf("compact value is %d characters, securecookie's %d", len(compact), len(securecookieForm))
	}
	for _, keys := range []*Keys{oldKeys, rotated} {
		if got, err := keys.SessionSealer(10).OpenSession("email_otp_session", want.Tenant, compact); err != nil || got != want {
			t.Errorf("opens to %+v, %v", got, err)
		}
	}
	raw, _ := base64.RawURLEncoding.DecodeString(compact)
	sealer := rotated.SessionSealer(10)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		if _, err := sealer.OpenSession("email_otp_session", want.Tenant, base64.RawURLEncoding.EncodeToString(b)); err == nil {
			t.Fatalf("byte %d flipped: the value still opens", i)
		}
	}
	if _, err := sealer.OpenSession("email_otp_session", "fabrikam.example", compact); err == nil {
		t.Error("the value opens for another tenant")
	}
	if _, err := oldKeys.SessionSealer(1).SealSession("email_otp_session", "fabrikam.example", want); err == nil {
		t.Error("a session sealed for a tenant that is not its own")
	}
	other := Session{ID: "not-random", Tenant: "t", Email: "b@c.de", IssuedAt: 5, ExpiresAt: 5}
	v, err := sealer.SealSession("email_otp_session", "t", other)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sealer.OpenSession("email_otp_session", "t", v); err != nil || got != other {
		t.Errorf("a session with a free-form id: %+v, %v", got, err)
	}
}

// A session's method survives the seal, for the passkey's own spelling and
// any other (a provider's), with either id form; a code session carries none.
func TestSealedSessionKeepsMethod(t *testing.T) {
	keys, _ := NewKeys(NewSecret())
	sealer := keys.SessionSealer(10)
	for _, want := range []Session{
		{ID: RandomToken(), Tenant: "t", Email: "ann@contoso.com", Method: MethodPasskey, IssuedAt: 5, ExpiresAt: 50},
		{ID: "text-id", Tenant: "t", Email: "ann@contoso.com", Method: "oidc:contoso", IssuedAt: 5, ExpiresAt: 50},
		{ID: RandomToken(), Tenant: "t", Email: "ann@contoso.com", IssuedAt: 5, ExpiresAt: 50},
	} {
		v, err := sealer.SealSession("email_otp_session", "t", want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := keys.SessionSealer(1).OpenSession("email_otp_session", "t", v); err != nil || got != want {
			t.Errorf("sealed %+v, opened %+v (%v)", want, got, err)
		}
	}
}
