package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDurationInEveryLanguage(t *testing.T) {
	cases := map[string]map[time.Duration]string{
		"en": {30 * time.Minute: "30 minutes", time.Hour: "1 hour", 90 * time.Second: "90 seconds", 2 * time.Hour: "2 hours"},
		"de": {time.Hour: "1 Stunde", 30 * time.Minute: "30 Minuten"},
		"fr": {time.Minute: "1 minute", 2 * time.Hour: "2 heures"},
		"es": {time.Second: "1 segundo", 3 * time.Hour: "3 horas"},
		"xx": {time.Hour: "1 hour"}, // unknown: English
	}
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for lang, ds := range cases {
		for d, want := range ds {
			if got := s.Words(lang).Duration(d); got != want {
				t.Errorf("Duration(%s, %v) = %q, want %q", lang, d, got, want)
			}
		}
	}
}

func TestEveryPageRendersAndEscapes(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	hostile := `<script>alert(1)</script>`
	for _, name := range []string{PageSignIn, PageVerify, PageSignOut, PageSignedOut, PageError, PageOutbox, PageConsent, PageForbidden, PageNotMe} {
		var b strings.Builder
		data := PageData{Base: "/.email-otp/", Tenant: hostile, Email: hostile, Heading: hostile, Message: hostile, Notice: hostile, CSRF: "tok", RD: "/x", CodeLength: 8}
		if err := s.Page(&b, name, data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		page := b.String()
		if strings.Contains(page, hostile) {
			t.Errorf("%s: a value reached the page unescaped", name)
		}
		if !strings.Contains(page, "<html") || !strings.Contains(page, "</html>") {
			t.Errorf("%s: not a whole page:\n%s", name, page)
		}
	}
	if err := s.Page(&strings.Builder{}, "nope", PageData{}); err == nil {
		t.Error("an unknown page rendered")
	}
}

func TestCodeEmailInEveryLanguage(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range s.Languages() {
		subject, text, html, err := s.Email(EmailData{
			Code: "12345678", Tenant: "Contoso", Resource: "/docs/a", Host: "docs.example.com",
			ClientIP: "192.0.2.1", Browser: "Firefox", System: "Linux", ExpiresIn: 30 * time.Minute,
			Lang: lang, NotMeLink: "https://docs.example.com/.email-otp/notme?t=x",
		})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if dir := map[bool]string{true: "rtl", false: "ltr"}[lang == "ar"]; !strings.Contains(html, `dir="`+dir+`"`) {
			t.Errorf("%s: the HTML email is not dir=%q", lang, dir)
		}
		if strings.Contains(subject, "12345678") || !strings.Contains(subject, "Contoso") {
			t.Errorf("%s: subject %q must name the tenant and not the code", lang, subject)
		}
		lines := strings.Split(strings.TrimRight(text, "\r\n"), "\n")
		if last := strings.TrimSpace(lines[len(lines)-1]); last != "@docs.example.com #12345678" {
			t.Errorf("%s: last line %q", lang, last)
		}
		for _, part := range []string{text, html} {
			for _, want := range []string{"12345678", "/docs/a", "192.0.2.1", "Firefox", "Linux", "notme?t=x"} {
				if !strings.Contains(part, want) {
					t.Errorf("%s: the email lacks %q:\n%s", lang, want, part)
				}
			}
		}
	}
}

func TestOperatorFilesOverrideByName(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "email"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "email", "subject.txt"), []byte("Code for {{.Tenant}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	subject, text, _, err := s.Email(EmailData{Code: "12345678", Tenant: "Contoso", Lang: "en", ExpiresIn: time.Minute})
	if err != nil || subject != "Code for Contoso" || !strings.Contains(text, "12345678") {
		t.Errorf("override: %q %v\n%s", subject, err, text)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing templates directory loads")
	}
}

func TestOneLineKeepsNoLineBreak(t *testing.T) {
	for _, in := range []string{"a\r\nb", "a\nb", "a\u2028b", "a\u0085b", "a\x00b"} {
		if got := OneLine(in); strings.ContainsAny(got, "\r\n\u2028\u0085\x00") {
			t.Errorf("OneLine(%q) = %q", in, got)
		}
	}
}

func TestInvitationEmailWritesInTheLanguagesDirection(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for lang, dir := range map[string]string{"ar": "rtl", "en": "ltr"} {
		_, _, html, err := s.Invitation(InviteData{Tenant: "Contoso", Email: "ada@contoso.com", Link: "https://docs.example.com/.email-otp/signin", Lang: s.Language(lang)})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if !strings.Contains(html, `dir="`+dir+`"`) {
			t.Errorf("%s: the invitation's HTML is not dir=%q", lang, dir)
		}
	}
}
