package flow

import "testing"

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

func TestSessionBinaryForm(t *testing.T) {
	s := Session{ID: "abc", Tenant: "docs.example.com", Email: "bob@contoso.com", IssuedAt: 1795420000, ExpiresAt: 1795506400}
	b, _ := s.MarshalBinary()
	var got Session
	if err := got.UnmarshalBinary(b); err != nil || got != s {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for i := 0; i < len(b); i++ { // every truncation is refused, never a panic
		if err := new(Session).UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	if err := new(Session).UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("a trailing byte is accepted")
	}
}
