package caddymodule

import "testing"

func TestEmailLanguage(t *testing.T) {
	for header, want := range map[string]string{
		"":                          "en",
		"ja":                        "en",
		"de-CH, fr;q=0.8, en;q=0.5": "de",
		"fr-CA":                     "fr",
		"es-419,es;q=0.9":           "es",
		"en-GB":                     "en",
		"pt-BR, de;q=0.3":           "de",
		"garbage;;q=x":              "en",
	} {
		if got := emailLanguage(header); got != want {
			t.Errorf("emailLanguage(%q) = %q, want %q", header, got, want)
		}
	}
}
