// Package smtpsink is a real SMTP server for tests, built on emersion/go-smtp:
// it listens on a loopback port, accepts every message, and lets a test wait
// for the message sent to an address and read its decoded parts.
package smtpsink

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one received message.
type Mail struct {
	From   string
	To     []string
	Header mail.Header
	Raw    []byte
	Text   string // the text/plain part, decoded
	HTML   string // the text/html part, decoded
}

// Options shape a sink.
type Options struct {
	// TLS, if set, is offered with STARTTLS, or from the first byte with Implicit.
	TLS      *tls.Config
	Implicit bool
	// Users, if set, must authenticate (AUTH PLAIN or LOGIN) before sending.
	Users map[string]string
	// Delay is how long the sink waits before accepting a message's data.
	Delay time.Duration
}

// Sink is a running SMTP server.
type Sink struct {
	Addr string // host:port
	Port int

	opts     Options
	mu       sync.Mutex
	messages []Mail
	refusals []error // replies to the next DATA commands, in order
	attempts int     // DATA commands seen
	arrived  chan struct{}
	server   *smtp.Server
}

// Start starts a plain sink on a free loopback port; it stops when the test ends.
func Start(t testing.TB) *Sink { return StartWith(t, Options{}) }

// StartWith starts a sink with options on a free loopback port.
func StartWith(t testing.TB, o Options) *Sink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtpsink: listening on loopback: %v", err)
	}
	s := &Sink{Addr: l.Addr().String(), Port: l.Addr().(*net.TCPAddr).Port, opts: o, arrived: make(chan struct{}, 1)}
	s.server = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{sink: s}, nil
	}))
	s.server.Domain = "localhost"
	s.server.AllowInsecureAuth = o.TLS == nil
	s.server.ReadTimeout = 10 * time.Second
	s.server.WriteTimeout = 10 * time.Second
	if o.TLS != nil {
		s.server.TLSConfig = o.TLS
		if o.Implicit {
			l = tls.NewListener(l, o.TLS)
		}
	}
	go func() { _ = s.server.Serve(l) }()
	t.Cleanup(func() { _ = s.server.Close() })
	return s
}

// Refuse makes the next DATA commands fail with these replies, in order, e.g.
// &smtp.SMTPError{Code: 451, Message: "try later"}; later ones are accepted.
func (s *Sink) Refuse(replies ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals = append(s.refusals, replies...)
}

// Attempts is the number of DATA commands seen, refused ones included.
func (s *Sink) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Messages returns every message received so far.
func (s *Sink) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.messages...)
}

// Count returns how many messages went to the address.
func (s *Sink) Count(to string) int {
	n := 0
	for _, m := range s.Messages() {
		for _, rcpt := range m.To {
			if strings.EqualFold(rcpt, to) {
				n++
			}
		}
	}
	return n
}

// Wait returns the n-th (1-based) message to the address, waiting up to timeout.
func (s *Sink) Wait(t testing.TB, to string, n int, timeout time.Duration) Mail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		seen := 0
		for _, m := range s.Messages() {
			for _, rcpt := range m.To {
				if strings.EqualFold(rcpt, to) {
					seen++
					if seen == n {
						return m
					}
				}
			}
		}
		select {
		case <-s.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("smtpsink: message %d to %s did not arrive within %v (got %d)", n, to, timeout, seen)
		}
	}
}

type session struct {
	sink   *Sink
	from   string
	to     []string
	authed bool
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// AuthMechanisms implements smtp.AuthSession.
func (s *session) AuthMechanisms() []string {
	if s.sink.opts.Users == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth implements smtp.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := s.sink.opts.Users[user]; !ok || want != pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.opts.Users != nil && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	time.Sleep(s.sink.opts.Delay)
	s.sink.mu.Lock()
	s.sink.attempts++
	var refusal error
	if len(s.sink.refusals) > 0 {
		refusal, s.sink.refusals = s.sink.refusals[0], s.sink.refusals[1:]
	}
	s.sink.mu.Unlock()
	if refusal != nil {
		return refusal
	}
	m := Mail{From: s.from, To: s.to, Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	if err := readParts(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &m); err != nil {
		return err
	}
	s.sink.mu.Lock()
	s.sink.messages = append(s.sink.messages, m)
	s.sink.mu.Unlock()
	select {
	case s.sink.arrived <- struct{}{}:
	default:
	}
	return nil
}

// loginServer is the server side of AUTH LOGIN, which go-sasl only has as a client.
type loginServer struct {
	check   func(user, pass string) error
	user    string
	gotUser bool
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case response == nil && !l.gotUser:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(response), true
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(response))
	}
}

func readParts(contentType, encoding string, body io.Reader, m *Mail) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := readParts(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, m); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}
