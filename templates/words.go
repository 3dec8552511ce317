package templates

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

// Vars fills the {{.Name}} places of a message.
type Vars map[string]any

// Words are the messages in one language: the one of the guest's browser
// that the message files have, else English. A sentence a language lacks
// is said in English.
type Words struct {
	loc  *i18n.Localizer
	msgs *messages
	// isolate: values go into sentences between U+2068 and U+2069, so an
	// address keeps its order inside right-to-left text (ForPage).
	isolate bool
	// Lang is the language the words are in (a BCP 47 tag such as "de").
	Lang string
}

// messages is the parsed message files and how to choose among them.
type messages struct {
	bundle  *i18n.Bundle
	tags    []language.Tag // English first: the fallback
	matcher language.Matcher
	ids     map[language.Tag]map[string]bool
	plural  map[string]bool // messages with forms by count
}

// loadMessages reads messages/*.toml from the embedded files, then from dir
// (if set), whose messages replace the embedded ones one by one and may add
// languages. Every message must exist in English and render with sample
// values, so a broken file fails at config load, not in front of a guest.
func loadMessages(dir string) (*messages, error) {
	m := &messages{bundle: i18n.NewBundle(language.English), ids: map[language.Tag]map[string]bool{}, plural: map[string]bool{}}
	m.bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	if err := m.parseFiles(embedded, "embedded"); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := m.parseFiles(os.DirFS(dir), dir); err != nil {
			return nil, err
		}
	}
	m.tags = m.bundle.LanguageTags()
	m.matcher = language.NewMatcher(m.tags)
	return m, m.check()
}

func (m *messages) parseFiles(fsys fs.FS, where string) error {
	names, err := fs.Glob(fsys, "messages/*.toml")
	if err != nil {
		return err
	}
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("%s: %w", path.Join(where, name), err)
		}
		f, err := m.bundle.ParseMessageFileBytes(data, name)
		if err != nil {
			return fmt.Errorf("%s: %w (a file is named after its language, like de.toml, and holds id = \"text\" lines)", path.Join(where, name), err)
		}
		if m.ids[f.Tag] == nil {
			m.ids[f.Tag] = map[string]bool{}
		}
		for _, msg := range f.Messages {
			m.ids[f.Tag][msg.ID] = true
			if msg.Zero+msg.One+msg.Two+msg.Few+msg.Many != "" {
				m.plural[msg.ID] = true
			}
		}
	}
	return nil
}

// SampleVars has a value for every place a message may use: {{.Tenant}},
// {{.Email}}, … and {{.Count}}.
func SampleVars() Vars {
	return Vars{"Tenant": "Contoso", "Email": "ann@example.com", "Detail": "%", "Duration": "30 minutes", "Wait": "25 seconds",
		"Path": "/docs/a", "IP": "192.0.2.1", "Browser": "Firefox", "System": "Linux", "InvitedBy": "Bob", "Provider": "contoso", "Date": "1 Dec 2026", "Count": 2,
		"Addresses": "bob@, x", "Device": "Chrome on Android", "Done": "ann@contoso.com"}
}

func placeNames() []string {
	var names []string
	for k := range SampleVars() {
		names = append(names, "{{."+k+"}}")
	}
	slices.Sort(names)
	return names
}

// check renders every message of every language with sample values.
func (m *messages) check() error {
	english := m.ids[language.English]
	sample := SampleVars()
	for _, tag := range m.tags {
		w := m.words(tag)
		for id := range m.ids[tag] {
			if !english[id] {
				return fmt.Errorf("messages/%s.toml: %q is not a message the gateway knows (see messages/en.toml)", tag, id)
			}
			lc := &i18n.LocalizeConfig{MessageID: id, TemplateData: sample}
			for _, n := range []int{0, 1, 2, 5} {
				if m.plural[id] {
					sample["Count"], lc.PluralCount = n, n
				}
				out, err := w.loc.Localize(lc)
				if err != nil {
					return fmt.Errorf("messages/%s.toml: %q: %w", tag, id, err)
				}
				if strings.Contains(out, "<no value>") {
					return fmt.Errorf("messages/%s.toml: %q uses a place the gateway does not fill; the places are %s", tag, id, strings.Join(placeNames(), ", "))
				}
			}
		}
	}
	return nil
}

func (m *messages) words(tag language.Tag) Words {
	return Words{loc: i18n.NewLocalizer(m.bundle, tag.String()), msgs: m, Lang: tag.String()}
}

// Words returns the messages in the language of an Accept-Language header
// (or a plain tag such as "de") that the message files serve best.
func (s *Set) Words(acceptLanguage string) Words {
	return s.msgs.words(s.msgs.match(acceptLanguage))
}

// Language is the language Words would speak for acceptLanguage.
func (s *Set) Language(acceptLanguage string) string {
	return s.msgs.match(acceptLanguage).String()
}

// Languages lists the languages the message files have, English first.
func (s *Set) Languages() []string {
	out := make([]string, len(s.msgs.tags))
	for i, t := range s.msgs.tags {
		out[i] = t.String()
	}
	return out
}

func (m *messages) match(acceptLanguage string) language.Tag {
	tags, _, _ := language.ParseAcceptLanguage(acceptLanguage)
	_, i, conf := m.matcher.Match(tags...)
	if conf == language.No {
		return m.tags[0]
	}
	return m.tags[i]
}

// Say is message id with vars filled in; an int "Count" picks the plural
// form. A message no file has is said as its id, which the tests forbid.
func (w Words) Say(id Message, vars Vars) string {
	if n, ok := vars["Count"].(int); ok && w.msgs.plural[string(id)] {
		return w.Count(id, n, vars)
	}
	msg, err := w.loc.Localize(&i18n.LocalizeConfig{MessageID: string(id), TemplateData: w.isolated(vars)})
	if msg == "" {
		return string(id) // the tests forbid this; a guest still reads something
	}
	_ = err // a sentence this language lacks comes in English, with err set
	return msg
}

// Count is message id in the plural form for n, with {{.Count}} = n.
func (w Words) Count(id Message, n int, vars Vars) string {
	data := Vars{"Count": n}
	for k, v := range vars {
		data[k] = v
	}
	msg, _ := w.loc.Localize(&i18n.LocalizeConfig{MessageID: string(id), TemplateData: w.isolated(data), PluralCount: n})
	if msg == "" {
		return string(id)
	}
	return msg
}

// Duration says d in its largest whole unit ("30 minutes", "1 Stunde").
// Pages and emails say durations through it alone.
func (w Words) Duration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return w.Count(DurationHours, int(d/time.Hour), nil)
	case d >= time.Minute && d%time.Minute == 0:
		return w.Count(DurationMinutes, int(d/time.Minute), nil)
	}
	return w.Count(DurationSeconds, int((d+time.Second-1)/time.Second), nil)
}

// AddressProblem is the sentence for an address the domain refused, by
// its reason (flow.AddressReason) and detail (the character or the limit).
func (w Words) AddressProblem(reason, detail string) string {
	id := Message("address_" + reason)
	if !w.msgs.ids[language.English][string(id)] {
		id = AddressOther
	}
	return w.Say(id, Vars{"Detail": detail})
}

// Localized is the code email's sentences in one language, ready to print.
type Localized struct {
	Subject, Intro, Validity, Resource, Origin, NotYou, Never, Support string
	NotMeLabel, NotMeAfter                                             string // the "wasn't you?" link and what it does
	TapLabel, TapAfter                                                 string // the one-tap sign-in link and where it works
	Dir                                                                string // the writing direction, for <html dir>
}

func (w Words) codeEmail(d EmailData) Localized {
	tenant := Vars{"Tenant": d.Tenant}
	subject := w.Say(EmailSubject, tenant)
	w = w.ForReading()
	l := Localized{
		Subject:  subject,
		Intro:    w.Say(EmailIntro, tenant),
		Validity: w.Say(EmailValidity, Vars{"Duration": w.Duration(d.ExpiresIn)}),
		NotYou:   w.Say(EmailNotYou, nil),
		Never:    w.Say(EmailNeverShare, nil),
		Support:  w.Say(EmailSupport, nil),
		Dir:      w.Dir(),
	}
	if d.Resource != "" {
		l.Resource = w.Say(EmailResource, Vars{"Path": d.Resource})
	}
	if d.NotMeLink != "" {
		l.NotMeLabel, l.NotMeAfter = w.Say(EmailNotmeLabel, nil), w.Say(EmailNotmeAfter, nil)
	}
	if d.TapLink != "" {
		l.TapLabel, l.TapAfter = w.Say(EmailTapLabel, nil), w.Say(EmailTapAfter, nil)
	}
	ip := d.ClientIP
	if ip == "" {
		ip = w.Say(EmailUnknownClient, nil)
	}
	if browser := d.Browser; browser != "" {
		if d.System != "" {
			browser = w.Say(EmailBrowserOn, Vars{"Browser": d.Browser, "System": d.System})
		}
		l.Origin = w.Say(EmailOriginBrowser, Vars{"IP": ip, "Browser": browser})
	} else {
		l.Origin = w.Say(EmailOrigin, Vars{"IP": ip})
	}
	return l
}

// Wait says how long until something may be done again, rounded up to a
// unit a person counts in: seconds below two minutes, minutes below two
// hours, then hours ("25 seconds", "4 minutes").
func (w Words) Wait(d time.Duration) string {
	up := func(unit time.Duration) int { return int((d + unit - 1) / unit) }
	switch {
	case d < 2*time.Minute:
		return w.Count(DurationSeconds, max(up(time.Second), 1), nil)
	case d < 2*time.Hour:
		return w.Count(DurationMinutes, up(time.Minute), nil)
	}
	return w.Count(DurationHours, up(time.Hour), nil)
}

// ForReading returns w for sentences shown on a page or in an email's
// body: in a right-to-left language each text value is isolated (FSI …
// PDI), so "alice@contoso.com", "/docs/plan.pdf" or a Latin tenant name does
// not reorder the Arabic around it. Mail subjects keep plain values: they
// are folded to one line.
func (w Words) ForReading() Words {
	w.isolate = w.Dir() == "rtl"
	return w
}

func (w Words) isolated(vars Vars) Vars {
	if !w.isolate || len(vars) == 0 {
		return vars
	}
	out := make(Vars, len(vars))
	for k, v := range vars {
		if s, ok := v.(string); ok && s != "" {
			v = "\u2068" + s + "\u2069"
		}
		out[k] = v
	}
	return out
}
