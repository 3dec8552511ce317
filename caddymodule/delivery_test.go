package emailotp

import (
	"testing"

	"github.com/otpgate/caddy-email-otp/flow"
)

// Queues share a Redis journal only when they can deliver each other's
// messages: the same mailer settings and the same keys.
func TestJournalNamesSeparateMailersAndKeys(t *testing.T) {
	keys, _ := flow.NewKeys(flow.NewSecret())
	other, _ := flow.NewKeys(flow.NewSecret())
	smtp := []byte(`{"module":"smtp","host":"smtp.example.com","from":"docs@example.com"}`)
	mailgun := []byte(`{"module":"mailgun","domain":"mg.example.com"}`)
	name := journalNameOf(smtp, keys)
	if again := journalNameOf(append([]byte(nil), smtp...), keys); again != name {
		t.Errorf("the same mailer and keys: %q, then %q", name, again)
	}
	if journalNameOf(mailgun, keys) == name {
		t.Error("another mailer shares the journal")
	}
	if journalNameOf(smtp, other) == name {
		t.Error("other keys share the journal")
	}
	if len(name) != 16 {
		t.Errorf("name %q", name)
	}
}
