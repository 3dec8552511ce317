package emailotp

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/caddy-email-otp/templates"
)

// The console says a guest's recent steps, the rule that decides for them
// and the limits holding their codes in words built from ids at run time:
// every id has words (in English; the templates' tests hold every language
// to every English message).
func TestConsoleHasWordsForEveryStepRuleAndHold(t *testing.T) {
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 1)
	signinEvents.Describe(ch)
	help := regexp.MustCompile(`help: "([^"]*)"`).FindStringSubmatch((<-ch).String())[1]
	help = regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(strings.SplitN(help, ": ", 2)[1], "")
	var ids []string
	for _, step := range regexp.MustCompile(`[a-z_]+`).FindAllString(help, -1) {
		if step != "and" && step != "page_shown" { // a page shown has no address
			ids = append(ids, "console_event_"+step)
		}
	}
	if len(ids) < 25 {
		t.Fatalf("read %d steps from the funnel's help, want every one: %s", len(ids), help)
	}
	for _, because := range []string{"blocked", "revoked", "allowed", "invited", "invite_only", "not_allowed"} {
		ids = append(ids, "console_why_"+because)
	}
	for _, hold := range []string{"cooldown", "per_address", "backoff", "lock", "notme"} {
		ids = append(ids, "console_hold_"+hold)
	}
	words := set.Words("en")
	for _, id := range ids {
		if said := words.Say(templates.Message(id), templates.Vars{"Detail": "x", "Date": "y"}); said == id {
			t.Errorf("no words for %s", id)
		}
	}
}
