package templates

import (
	"go/ast"
	"time"

	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

// messageIDs reads the Message constants from messages.go, so the test
// knows every id the Go code may ask for.
func messageIDs(t *testing.T) []Message {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "messages.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []Message
	ast.Inspect(f, func(n ast.Node) bool {
		if v, ok := n.(*ast.ValueSpec); ok && len(v.Values) == 1 {
			if lit, ok := v.Values[0].(*ast.BasicLit); ok {
				s, _ := strconv.Unquote(lit.Value)
				ids = append(ids, Message(s))
			}
		}
		return true
	})
	if len(ids) < 40 {
		t.Fatalf("only %d message ids read from messages.go", len(ids))
	}
	return ids
}

// Every id the code asks for has English words, and no rendered message
// shows its id or an unfilled place.
func TestEveryMessageHasWords(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	vars := SampleVars()
	for _, lang := range s.Languages() {
		w := s.Words(lang)
		for _, id := range messageIDs(t) {
			for _, got := range []string{w.Say(id, vars), w.Count(id, 1, vars), w.Count(id, 3, vars)} {
				if got == "" || got == string(id) || strings.Contains(got, "<no value>") || strings.Contains(got, "{{") {
					t.Errorf("%s %s: %q", lang, id, got)
				}
			}
		}
	}
}

func TestWordsPickTheGuestsLanguage(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for accept, want := range map[string]string{
		"de-DE,de;q=0.9,en;q=0.8": "de",
		"fr-CH, fr;q=0.9":         "fr",
		"es-419":                  "es",
		"pt-BR":                   "en",
		"":                        "en",
		"*":                       "en",
		"xx-invalid;;q=":          "en",
		"ja":                      "ja",
		"ar-EG,ar;q=0.9":          "ar",
		"en-GB":                   "en",
		"pt-BR, de;q=0.3":         "de",
	} {
		if got := s.Language(accept); got != want {
			t.Errorf("Language(%q) = %q, want %q", accept, got, want)
		}
	}
	if got := s.Words("en").Count(WrongCode, 1, nil); !strings.Contains(got, "1 try left") {
		t.Errorf("singular: %q", got)
	}
	if got := s.Words("en").Count(WrongCode, 4, nil); !strings.Contains(got, "4 tries left") {
		t.Errorf("plural: %q", got)
	}
}

func TestAddressProblemForEveryReason(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	w := s.Words("en")
	other := w.Say(AddressOther, nil)
	for _, reason := range []string{"empty", "too_long", "control", "at_sign", "local_empty", "local_too_long", "local_dots", "local_non_ascii", "routing", "local_char", "domain"} {
		if got := w.AddressProblem(reason, "%"); got == other || strings.Contains(got, "address_") {
			t.Errorf("%s: %q", reason, got)
		}
	}
	if got := w.AddressProblem("no_such_reason", ""); got != other {
		t.Errorf("unknown reason: %q", got)
	}
}

// An operator's file changes one sentence, adds a language, and a broken
// file fails at load with its name.
func TestOperatorMessageFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "messages"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "messages", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("en.toml", `busy_title = "Hold on a minute"`)
	write("it.toml", "email_subject = \"Il tuo codice per {{.Tenant}}\"\n")
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Words("en").Say(BusyTitle, nil); got != "Hold on a minute" {
		t.Errorf("override: %q", got)
	}
	if got := s.Words("en").Say(BusyText, nil); !strings.Contains(got, "Many sign-in codes") {
		t.Errorf("the other sentences stay: %q", got)
	}
	if got := s.Words("it-IT").Say(EmailSubject, Vars{"Tenant": "Contoso"}); got != "Il tuo codice per Contoso" {
		t.Errorf("added language: %q", got)
	}
	// A sentence the added language lacks comes in English.
	if got := s.Words("it").Say(BusyText, nil); !strings.Contains(got, "Many sign-in codes") {
		t.Errorf("missing Italian sentence: %q", got)
	}
	write("it.toml", `no_such_message = "x"`)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "it.toml") || !strings.Contains(err.Error(), "no_such_message") {
		t.Errorf("an unknown id: %v", err)
	}
	write("it.toml", `email_subject = "{{.Tenant"`)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "it.toml") {
		t.Errorf("a broken template: %v", err)
	}
}

// The six languages the gateway ships each say every sentence: a missing
// one would reach a guest in English.
func TestEveryLanguageHasEveryMessage(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Languages(), " "); got != "en ar de es fr ja" {
		t.Errorf("languages: %s", got)
	}
	english := s.msgs.ids[language.English]
	for _, lang := range s.Languages() {
		have := s.msgs.ids[language.Make(lang)]
		for id := range english {
			if !have[id] {
				t.Errorf("messages/%s.toml lacks %q", lang, id)
			}
		}
	}
}

// Every page in every language: the sentences are there (no message id
// shows), <html> names the language and its direction, values are escaped.
func TestEveryPageInEveryLanguage(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range s.msgs.ids[language.English] {
		ids = append(ids, id)
	}
	for _, lang := range s.Languages() {
		w := s.Words(lang)
		for _, name := range pageNames {
			var b strings.Builder
			data := PageData{Words: w, Base: "/.email-otp/", Tenant: "Contoso", Email: "<b>ann@example.com</b>", CSRF: "tok", RD: "/x",
				CodeLength: 8, CodeTTL: 30 * time.Minute, Delivery: "queued", Heading: "h", Message: "m",
				Brand: Brand{Logo: "data:image/svg+xml,%3Csvg%3E%3C/svg%3E", Accent: "#7a1fa2", AccentDark: "#d7a8ff", Support: "mailto:help@example.com", Privacy: "https://example.com/privacy"}}
			if err := s.Page(&b, name, data); err != nil {
				t.Fatalf("%s %s: %v", lang, name, err)
			}
			page := b.String()
			dir := "ltr"
			if lang == "ar" {
				dir = "rtl"
			}
			if !strings.Contains(page, `<html lang="`+lang+`" dir="`+dir+`">`) {
				t.Errorf("%s %s: <html> does not name the language and direction", lang, name)
			}
			for _, id := range ids {
				if strings.Contains(page, ">"+id+"<") || strings.Contains(page, " "+id+" ") {
					t.Errorf("%s %s: shows the id %q instead of its words", lang, name, id)
				}
			}
			if strings.Contains(page, "<b>ann") || strings.Contains(page, "<no value>") {
				t.Errorf("%s %s: a value is unescaped or missing", lang, name)
			}
		}
	}
}

// In Arabic an address inside a sentence on a page is isolated, so it keeps
// its order; mail text keeps the plain value.
func TestPageWordsIsolateValuesInRightToLeftText(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	vars := Vars{"Email": "ann@example.com", "Tenant": "Contoso"}
	if got := s.Words("ar").ForReading().Say(NotPermitted, vars); !strings.Contains(got, "\u2068ann@example.com\u2069") {
		t.Errorf("Arabic page sentence: %q", got)
	}
	if got := s.Words("ar").Say(NotPermitted, vars); strings.ContainsAny(got, "\u2068\u2069") {
		t.Errorf("Arabic mail sentence: %q", got)
	}
	if got := s.Words("de").ForReading().Say(NotPermitted, vars); strings.ContainsAny(got, "\u2068\u2069") {
		t.Errorf("German page sentence: %q", got)
	}
}

// In an Arabic code email the path and the address keep their order inside
// the sentences (isolated), and the subject stays plain.
func TestArabicEmailIsolatesValues(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for lang, isolated := range map[string]bool{"ar": true, "en": false} {
		subject, text, _, err := s.Email(EmailData{Code: "12345678", Tenant: "Contoso", Resource: "/docs/plan.pdf", Host: "docs.example.com",
			ClientIP: "192.0.2.1", ExpiresIn: 30 * time.Minute, Lang: lang})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(text, "\u2068/docs/plan.pdf\u2069"); got != isolated {
			t.Errorf("%s: the path isolated in the text: %v, want %v\n%s", lang, got, isolated, text)
		}
		if strings.ContainsAny(subject, "\u2068\u2069") {
			t.Errorf("%s: the subject carries isolates: %q", lang, subject)
		}
	}
}

// The Arabic invitation isolates the invited address in its sentences too.
func TestArabicInvitationIsolatesValues(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	subject, text, _, err := s.Invitation(InviteData{Tenant: "Contoso", Email: "bob@partner.example", Link: "https://docs.example.com/x", InvitedBy: "alice@contoso.com", Lang: "ar"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "\u2068alice@contoso.com\u2069") && !strings.Contains(text, "\u2068bob@partner.example\u2069") {
		t.Errorf("no address isolated in the Arabic invitation:\n%s", text)
	}
	if strings.ContainsAny(subject, "\u2068\u2069") || strings.Contains(subject, "  ") {
		t.Errorf("the subject carries isolates or their blanks: %q", subject)
	}
}
