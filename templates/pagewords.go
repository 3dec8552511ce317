package templates

import (
	"fmt"
	"html"
	htmltemplate "html/template"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

// T says message id in the page's language. kv are pairs of a place's name
// and its value ("Email", .Email); a "Count" picks the plural form.
// html/template escapes the result like any other value.
func (d PageData) T(id string, kv ...any) string {
	return d.words().Say(Message(id), pairs(kv))
}

// B is T for a sentence with values in it: the sentence and every value are
// escaped, each value is isolated in <bdi> (an address or a Latin tenant name
// keeps its order inside Arabic text, and the other way round), and the
// address is in bold. Translators keep a value as one place ({{.Email}})
// and write no markup.
func (d PageData) B(id string, kv ...any) htmltemplate.HTML {
	vars := pairs(kv)
	var repl []string
	marked := Vars{}
	for k, v := range vars {
		s, isText := v.(string)
		if !isText || k == "Count" {
			marked[k] = v
			continue
		}
		mark := "\x00" + strconv.Itoa(len(repl)/2) + "\x00"
		value := "<bdi>" + html.EscapeString(strings.ReplaceAll(s, "\x00", "")) + "</bdi>"
		if k == "Email" {
			value = "<strong>" + value + "</strong>"
		}
		marked[k] = mark
		repl = append(repl, mark, value)
	}
	text := html.EscapeString(d.words().Say(Message(id), marked))
	return htmltemplate.HTML(strings.NewReplacer(repl...).Replace(text))
}

// Lang is the page's language, for <html lang>.
func (d PageData) Lang() string { return d.words().Lang }

// Dir is the page's writing direction, for <html dir>: "rtl" or "ltr".
func (d PageData) Dir() string { return d.words().Dir() }

// ValidFor says how long a code works, in words.
func (d PageData) ValidFor() string { return d.words().Duration(d.CodeTTL) }

// words are the page's Words; Set.Page fills in English when they are unset.
func (d PageData) words() Words { return d.Words }

func pairs(kv []any) Vars {
	vars := make(Vars, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		vars[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return vars
}

// rtlBases are the base languages written right to left.
var rtlBases = map[string]bool{"ar": true, "he": true, "fa": true, "ur": true, "ps": true, "yi": true, "dv": true, "ckb": true, "sd": true, "ug": true}

// Dir is "rtl" for a language written right to left, else "ltr".
func (w Words) Dir() string {
	base, _ := language.Make(w.Lang).Base()
	if rtlBases[base.String()] {
		return "rtl"
	}
	return "ltr"
}
