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
