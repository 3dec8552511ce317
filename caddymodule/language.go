package caddymodule

import (
	"golang.org/x/text/language"

	"github.com/otpgate/caddy-email-otp/templates"
)

var emailLanguages = func() []language.Tag {
	var tags []language.Tag
	for _, l := range templates.Languages() {
		tags = append(tags, language.Make(l))
	}
	return tags
}()

// languageMatcher picks the email's language; the first, English, is the
// fallback for guests whose languages we don't have.
var languageMatcher = language.NewMatcher(emailLanguages)

// emailLanguage returns the best of templates.Languages() for an
// Accept-Language header.
func emailLanguage(acceptLanguage string) string {
	tags, _, _ := language.ParseAcceptLanguage(acceptLanguage)
	_, i, _ := languageMatcher.Match(tags...)
	return templates.Languages()[i]
}
