package flow

import "context"

// Message is one email, already rendered.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer delivers messages. Send returns only once the message was handed on
// (or failed), and must honour ctx's deadline.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// CodeMail is what the code email says; a Composer turns it into a Message.
type CodeMail struct {
	To        string
	Code      string
	Tenant    string
	Resource  string // the local path the guest asked for
	ClientIP  string
	UserAgent string
	ExpiresIn string // e.g. "30 minutes"
	ExpiresAt string // e.g. "15:04 UTC"
}

// Composer renders the code email.
type Composer func(CodeMail) (Message, error)
