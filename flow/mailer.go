package flow

import (
	"context"
	"time"
)

// Message is one email, already rendered.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer delivers messages. Send returns only once the message was handed on
// (or failed), and must honour ctx's deadline. A failure that no retry will
// fix is marked with Permanent.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// CodeMail is what the code email says; a Composer turns it into a Message.
type CodeMail struct {
	// ChallengeID names the challenge the code belongs to, for links that
	// act on that code alone ("this wasn't me").
	ChallengeID string
	To          string
	Code        string
	Tenant      string
	Resource    string // the local path the guest asked for
	Host        string // the site's host name
	Base        string // the absolute URL of the gateway's endpoints
	Language    string // the guest's Accept-Language
	ClientIP    string
	UserAgent   string
	ExpiresIn   time.Duration
	ExpiresAt   time.Time
}

// Composer renders the code email.
type Composer func(CodeMail) (Message, error)
