// Package templates holds what a guest reads: the gateway's HTML pages, the
// emails, and the sentences in every language (messages/<lang>.toml),
// embedded in the binary. An operator may override any of them by putting a
// file of the same name in a directory (pages/signin.html, email/code.txt,
// messages/de.toml, …): the rest keep their embedded defaults.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/otpgate/caddy-email-otp/internal/textcheck"
)

//go:embed pages/*.html email/* messages/*.toml
var embedded embed.FS

// Page names.
const (
	PageSignIn     = "signin"
	PageVerify     = "verify"
	PageSignOut    = "signout"
	PageSignedOut  = "signedout"
	PageError      = "error"
	PageOutbox     = "outbox"
	PageConsent    = "consent"
	PageForbidden  = "forbidden"
	PageNotMe      = "notme"
	PageTap        = "tap"
	PagePasskey    = "passkey"
	PageFederation = "federation"
	PageConsole    = "console"
)

var pageNames = []string{PageSignIn, PageVerify, PageSignOut, PageSignedOut, PageError, PageOutbox, PageConsent, PageForbidden, PageNotMe, PageTap, PagePasskey, PageFederation, PageConsole}

// PageData is what every page template receives. Fields a page doesn't use are
// zero. Everything is escaped by html/template. Pages say their sentences
// with {{.T "id"}} and {{.B "id" "Email" .Email}} in the language of Words.
type PageData struct {
	Words      Words // the guest's language; English if unset
	Brand      Brand // the tenant's look
	Title      string
	Tenant     string
	Base       string // the gateway's endpoint prefix, e.g. "/.email-otp/"
	CSRF       string
	RD         string // where the guest goes after signing in
	Email      string
	FieldError string // shown next to the form field
	Notice     string // shown above the form
	NoticeWarn bool   // the notice is a warning (a locked code), not news
	TriesLeft  int
	CodeLength int
	CodeTTL    time.Duration // how long a code works (ValidFor says it in words)
	Delivery   string        // verify page: on_its_way, retrying or failed (flow.DeliveryView)
	HeldWait   string        // verify page: a limit holds new codes for this long (in words)
	Nonce      string        // the CSP nonce of the page's script; "": no script
	Trouble    bool          // sign-in page: mail delivery is failing right now
	Polls      bool          // verify page: its script asks …/status how the code gets on
	Fallback   bool          // federation page: the guest may get a code instead
	Passkeys   bool          // passkeys are on: the sign-in page offers them, the code pages tell whether this device can make one
	Token      string        // "this wasn't me" page: the link's token
	Heading    string        // error pages
	Message    string        // error pages
	Action     string        // error pages: a link the guest can follow
	ActionText string
	Outbox     []OutboxEntry
	Console    *ConsoleView // console pages
}

// ConsoleView is what the console's pages show. View is home, guests,
// guest, confirm or invite.
type ConsoleView struct {
	View      string
	Admin     string // the signed-in admin's address
	Home      string // the console's root
	SignOut   string
	Tenants   []ConsoleTenant // home: the tenants this admin sees
	AnyTenant bool            // home: the admin sees every tenant, also by id
	Tenant    ConsoleTenant
	Query     ConsoleQuery
	Guests    []ConsoleGuest
	Next      string // the next page's query string, "" on the last
	First     string // the first page's, "" on the first
	Guest     *ConsoleGuest
	Action    ConsoleAction // confirm: what is asked
	Done      Message       // what was just done, said above the page
	DoneEmail string
	DoneCount int                // how many, when Done is about many
	Invite    *ConsoleInviteForm // invite: the form
	Overview  *ConsoleOverview   // overview: the funnel and the mail
}

// ConsoleOverview is a tenant's sign-in funnel and how mail is doing.
type ConsoleOverview struct {
	Rows                          []ConsoleFunnelRow
	MailResult, MailAt, MailError string // the mailer's last answer; "" before any
	Queue                         int
	Journal                       *int64 // nil: no journal (store memory) or Redis down
	StoreOK                       bool
	StoreLatency                  float64 // ms
}

// ConsoleFunnelRow is one step of the funnel: its counts, and its bars'
// lengths in percent of the window's largest count.
type ConsoleFunnelRow struct {
	Label                      Message
	Day, Week, DayBar, WeekBar int
}

// ConsoleInviteForm is the invitation form as the admin filled it, and what
// was wrong with it.
type ConsoleInviteForm struct {
	Emails, Link, Paths, Expires, Language string
	AskConsent, Send                       bool
	EmailsError, LinkError, PathsError     string
	Notice                                 string // how far a stopped invitation got
	Expiries, Languages                    []ConsoleOption
}

// ConsoleOption is one choice of a select; Lang is the language its text
// is in, where that is not the page's.
type ConsoleOption struct {
	Value, Text, Lang string
	Selected          bool
}

// ConsoleSelect is one of the guest list's filter selects: its field name
// (also its id), its label and its choices, in the admin's words.
type ConsoleSelect struct {
	Name, Label string
	Options     []ConsoleOption
}

// ConsoleTenant is a tenant on the console: its id, name and page.
type ConsoleTenant struct{ ID, Name, Link string }

// ConsoleQuery is the guest list's form as the admin filled it.
type ConsoleQuery struct {
	Search, After, Before string
	Selects               []ConsoleSelect // status, source and order
}

// ConsoleGuest is a guest on the console; a guest's page fills every field.
type ConsoleGuest struct {
	Email, Source, Provider, InvitedBy, LastSignIn, Link    string
	StatusText, SourceText                                  string // in the admin's language
	InvitedAt, InviteExpires, RedeemedAt, SessionsNotBefore string
	Paths                                                   []string
	Passkeys                                                []ConsolePasskey
	AskConsent                                              bool // invited, and asked to agree first
	Actions                                                 []ConsoleAction
	Why                                                     string   // whether the address may sign in, and which rule says so
	Holds                                                   []string // the limits holding its codes now
	PathCheck                                               ConsolePathCheck
	Events                                                  []ConsoleEvent // newest first
}

// ConsolePathCheck is the guest page's "can it open this path?" answer.
type ConsolePathCheck struct{ Path, Answer string }

// ConsoleEvent is one recent audit step about a guest, in the admin's
// language.
type ConsoleEvent struct{ At, Text, Reason, By string }

// ConsolePasskey is one of a guest's passkeys, as admins see it.
type ConsolePasskey struct{ Device, Created, LastUsed, Delete string }

// ConsoleAction is an action on a guest: its name, words and page.
type ConsoleAction struct {
	Name    string
	Label   Message
	Link    string
	Confirm Message
	Device  string // a passkey's, when the action is its deletion
}

// OutboxEntry is a message on the dev outbox page.
type OutboxEntry struct {
	At, To, Subject, Text string
}

// EmailData is what the email templates receive.
type EmailData struct {
	Code      string
	NotMeLink string // cancels the code and stops codes for a while
	TapLink   string // signs in the browser that asked, as the code does
	Tenant    string // the tenant's display name
	Resource  string // the local path the guest asked for
	Host      string // the site's host name, for the one-time-code line
	ClientIP  string
	Browser   string // from a fixed list ("Chrome"), or empty
	System    string // the browser's operating system ("Linux"), or empty
	ExpiresIn time.Duration
	Lang      string // the email's language (Set.Language)
	Brand     Brand
	L         Localized // filled by Email: the sentences in Lang
}

// InviteData is what the invitation email templates receive. They say
// their sentences with {{.T "id"}} in Lang.
type InviteData struct {
	Tenant    string // the tenant's display name
	Email     string // the invited address
	Link      string // signs the guest in and lands on the shared resource
	InvitedBy string
	Expires   time.Time // zero: no expiry
	Lang      string    // the email's language (Set.Language)
	Brand     Brand
	words     Words
}

// T says message id in the invitation's language; see PageData.T.
func (d InviteData) T(id string, kv ...any) string { return d.words.Say(Message(id), pairs(kv)) }

// Dir is the email's writing direction, for <html dir>: "rtl" or "ltr".
func (d InviteData) Dir() string { return d.words.Dir() }

// Until says the invitation's last day, in the date style of its language.
func (d InviteData) Until() string {
	if d.Expires.IsZero() {
		return ""
	}
	return d.Expires.UTC().Format(d.words.Say(DateLayout, nil))
}

// mail is the three templates of one email.
type mail struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

func parseMail(fsys fs.FS, subject, text, html string) (mail, error) {
	var m mail
	var err error
	if m.subject, err = texttemplate.ParseFS(fsys, subject); err != nil {
		return m, err
	}
	if m.text, err = texttemplate.ParseFS(fsys, text); err != nil {
		return m, err
	}
	m.html, err = htmltemplate.ParseFS(fsys, html)
	return m, err
}

// render fills the three templates, the subject from subjectData and the
// bodies from data; the subject is folded to one line, so nothing a guest
// or an admin typed can start a new header.
func (m mail) render(subjectData, data any) (subject, text, html string, err error) {
	var sb, tb, hb bytes.Buffer
	if err = m.subject.Execute(&sb, subjectData); err != nil {
		return "", "", "", fmt.Errorf("subject: %w", err)
	}
	if err = m.text.Execute(&tb, data); err != nil {
		return "", "", "", fmt.Errorf("text: %w", err)
	}
	if err = m.html.Execute(&hb, data); err != nil {
		return "", "", "", fmt.Errorf("HTML: %w", err)
	}
	return OneLine(sb.String()), tb.String(), hb.String(), nil
}

// Set is a parsed set of pages and email templates.
type Set struct {
	msgs   *messages
	pages  map[string]*htmltemplate.Template
	code   mail
	invite mail
}

// Load parses the embedded templates, each overridden by a file of the same
// relative name under dir if dir is not empty.
func Load(dir string) (*Set, error) {
	var fsys fs.FS = embedded
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("templates directory %q: not a readable directory", dir)
		}
		fsys = overlay{top: os.DirFS(dir), base: embedded}
	}
	s := &Set{pages: make(map[string]*htmltemplate.Template)}
	var err error
	if s.msgs, err = loadMessages(dir); err != nil {
		return nil, err
	}
	for _, name := range pageNames {
		t, err := htmltemplate.New("layout.html").ParseFS(fsys, "pages/layout.html", "pages/passkeyscript.html", "pages/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", name, err)
		}
		s.pages[name] = t
	}
	if s.code, err = parseMail(fsys, "email/subject.txt", "email/code.txt", "email/code.html"); err != nil {
		return nil, fmt.Errorf("code email: %w", err)
	}
	if s.invite, err = parseMail(fsys, "email/invite_subject.txt", "email/invite.txt", "email/invite.html"); err != nil {
		return nil, fmt.Errorf("invitation email: %w", err)
	}
	// Render every template once with sample data, so a broken override fails
	// at config load rather than in front of a guest.
	for _, name := range pageNames {
		if err := s.Page(io.Discard, name, PageData{}); err != nil {
			return nil, err
		}
	}
	if _, _, _, err := s.Email(EmailData{}); err != nil {
		return nil, err
	}
	if _, _, _, err := s.Invitation(InviteData{}); err != nil {
		return nil, err
	}
	return s, nil
}

// Page renders a page into w; nothing is written if rendering fails.
func (s *Set) Page(w io.Writer, name string, data PageData) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("no page %q", name)
	}
	if data.Words.loc == nil {
		data.Words = s.Words("en")
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("page %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Email renders the code email in data.Lang (English if unknown).
func (s *Set) Email(data EmailData) (subject, text, html string, err error) {
	w := s.Words(data.Lang)
	data.Lang, data.L = w.Lang, w.codeEmail(data)
	subject, text, html, err = s.code.render(data, data)
	if err != nil {
		err = fmt.Errorf("code email %w", err)
	}
	return subject, text, html, err
}

// Invitation renders the invitation email.
func (s *Set) Invitation(data InviteData) (subject, text, html string, err error) {
	data.words = s.Words(data.Lang)
	data.Lang = data.words.Lang
	// The bodies isolate values in right-to-left languages; the subject,
	// folded to one line, keeps them plain.
	body := data
	body.words = data.words.ForReading()
	subject, text, html, err = s.invite.render(data, body)
	if err != nil {
		err = fmt.Errorf("invitation email %w", err)
	}
	return subject, text, html, err
}

// OneLine makes s one trimmed line: every character that could end a line or
// turn text around (textcheck.IsControl) becomes a space.
func OneLine(s string) string {
	return strings.TrimSpace(textcheck.OneLine(s))
}

// overlay reads a file from top if it is there, else from base.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(path.Clean(name))
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.base.Open(name)
}
