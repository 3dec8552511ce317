package assertion

import (
	"encoding/json"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func sched() Schedule {
	return Schedule{TTL: 5 * time.Minute, Rotate: 7 * 24 * time.Hour, Lead: time.Hour}
}

// A new key is published Lead before it signs; the old one stays published
// until its last assertion has expired, then goes.
func TestRingRotatesOnSchedule(t *testing.T) {
	r := &Ring{Schedule: sched()}
	if changed, err := r.Rotate(t0); err != nil || !changed || len(r.Keys) != 1 {
		t.Fatalf("first key: %v %v %d", changed, err, len(r.Keys))
	}
	first := r.Keys[0]
	if k, _ := r.signing(t0); k.ID != first.ID {
		t.Fatal("the only key does not sign")
	}
	if changed, _ := r.Rotate(t0.Add(6 * 24 * time.Hour)); changed {
		t.Fatal("rotated early")
	}
	at := t0.Add(7*24*time.Hour - time.Hour) // Rotate - Lead
	if changed, _ := r.Rotate(at); !changed || len(r.Keys) != 2 {
		t.Fatalf("no new key at %v: %d keys", at, len(r.Keys))
	}
	second := r.Keys[0]
	if k, _ := r.signing(at.Add(59 * time.Minute)); k.ID != first.ID {
		t.Error("the new key signs before its lead time")
	}
	if k, _ := r.signing(at.Add(time.Hour)); k.ID != second.ID {
		t.Error("the new key does not sign after its lead time")
	}
	if changed, _ := r.Rotate(at.Add(time.Hour + 4*time.Minute)); changed || len(r.Keys) != 2 {
		t.Error("the old key went while its assertions may still live")
	}
	if changed, _ := r.Rotate(at.Add(time.Hour + 6*time.Minute)); !changed || len(r.Keys) != 1 || r.Keys[0].ID != second.ID {
		t.Errorf("the old key stays after its last assertion expired: %d keys", len(r.Keys))
	}
}

func TestRingStoresAndPublishesPublicKeysOnly(t *testing.T) {
	r := &Ring{Schedule: sched()}
	_, _ = r.Rotate(t0)
	_, _ = r.Rotate(t0.Add(7 * 24 * time.Hour))
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data, sched())
	if err != nil || len(back.Keys) != 2 || back.Keys[0].ID != r.Keys[0].ID || !back.Keys[1].Created.Equal(r.Keys[1].Created) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	jwks, _ := r.JWKS()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("jwks %s: %v", jwks, err)
	}
	for _, k := range set.Keys {
		if k["d"] != nil || k["alg"] != "ES256" || k["kid"] == "" || k["use"] != "sig" {
			t.Errorf("published key %v", k)
		}
	}
	if _, err := Unmarshal([]byte(`[{"kid":"x","pkcs8":"AAAA"}]`), sched()); err == nil {
		t.Error("a broken key loads")
	}
}

// A session's assertion is signed once and reused; a new one comes in its
// last fifth of life, with a new status, or when another key signs.
func TestMinterSignsOncePerSession(t *testing.T) {
	r := &Ring{Schedule: sched()}
	_, _ = r.Rotate(t0)
	m := NewMinter(r, 100)
	c := Claims{Issuer: "https://docs.example/", Subject: "ann@example.com", Email: "ann@example.com", Tenant: "acme", SessionID: "s1", Status: "redeemed"}
	a, err := m.Mint(c, t0)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := m.Mint(c, t0.Add(3*time.Minute)); b != a {
		t.Error("signed again within the assertion's life")
	}
	if b, _ := m.Mint(c, t0.Add(4*time.Minute)); b == a {
		t.Error("the same assertion in its last fifth of life")
	}
	other := c
	other.Status = "invited"
	if b, _ := m.Mint(other, t0.Add(4*time.Minute)); b == a {
		t.Error("another status, the same assertion")
	}
}

func BenchmarkMint(b *testing.B) {
	r := &Ring{Schedule: sched()}
	_, _ = r.Rotate(t0)
	c := Claims{Issuer: "https://docs.example/", Subject: "ann@example.com", Email: "ann@example.com", Tenant: "acme", SessionID: "s1"}
	b.Run("remembered", func(b *testing.B) {
		m := NewMinter(r, 100)
		_, _ = m.Mint(c, t0)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := m.Mint(c, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signed", func(b *testing.B) {
		m := NewMinter(r, 100)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.SessionID = "s" + string(rune('a'+i%26)) + time.Duration(i).String()
			if _, err := m.Mint(c, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestDueSaysWhatRotateWouldDo(t *testing.T) {
	r := &Ring{Schedule: sched()}
	for _, at := range []time.Duration{0, 6 * 24 * time.Hour, 7*24*time.Hour - time.Hour, 7*24*time.Hour + 4*time.Minute, 7*24*time.Hour + 6*time.Minute} {
		now := t0.Add(at)
		due := r.Due(now)
		keys := len(r.Keys)
		changed, err := r.Rotate(now)
		if err != nil || changed != due {
			t.Errorf("at +%v: Due %v, Rotate changed %v (%d → %d keys) %v", at, due, changed, keys, len(r.Keys), err)
		}
	}
}
