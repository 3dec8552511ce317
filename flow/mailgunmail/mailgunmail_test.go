package mailgunmail_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/mailgunmail"
)

// mailgunAPI is a test server that speaks Mailgun's send endpoint
// (POST /v3/<domain>/messages, basic auth "api:<key>", a multipart form) and
// answers with the statuses it is told to.
type mailgunAPI struct {
	*httptest.Server
	mu       sync.Mutex
	forms    []map[string][]string
	statuses []int
	delay    time.Duration
}

func startMailgunAPI(t *testing.T, key string) *mailgunAPI {
	api := &mailgunAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(api.delay)
		user, pass, ok := r.BasicAuth()
		if !ok || user != "api" || pass != key {
			http.Error(w, `{"message":"Invalid private key"}`, http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v3/mg.example.com/messages" {
			http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
			return
		}
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			http.Error(w, `{"message":"bad form"}`, http.StatusBadRequest)
			return
		}
		api.mu.Lock()
		status := http.StatusOK
		if len(api.statuses) > 0 {
			status, api.statuses = api.statuses[0], api.statuses[1:]
		}
		if status == http.StatusOK {
			api.forms = append(api.forms, r.MultipartForm.Value)
		}
		api.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write([]byte(`{"id":"<20261123.1@mg.example.com>","message":"Queued. Thank you."}`))
		} else {
			_, _ = w.Write([]byte(`{"message":"refused"}`))
		}
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *mailgunAPI) answer(statuses ...int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.statuses = append(a.statuses, statuses...)
}

func newMailer(t *testing.T, base, key string, timeout time.Duration) *mailgunmail.Mailer {
	t.Helper()
	m, err := mailgunmail.New(mailgunmail.Config{Domain: "mg.example.com", APIKey: key, From: "Shared documents <docs@mg.example.com>", APIBase: base, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var msg = flow.Message{To: "bob@contoso.com", Subject: "Your sign-in code for Contoso", Text: "code 12345678", HTML: "<p>code <b>12345678</b></p>"}

func TestSendCarriesTheMessage(t *testing.T) {
	api := startMailgunAPI(t, "key-123")
	if err := newMailer(t, api.URL+"/v3", "key-123", 0).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	f := api.forms[0]
	want := map[string]string{
		"to": "bob@contoso.com", "from": "Shared documents <docs@mg.example.com>", "subject": msg.Subject,
		"text": msg.Text, "html": msg.HTML, "h:Auto-Submitted": "auto-generated",
	}
	for k, v := range want {
		if got := strings.Join(f[k], ","); got != v {
			t.Errorf("form %s = %q, want %q", k, got, v)
		}
	}
}

func TestAPIErrorsAreClassified(t *testing.T) {
	api := startMailgunAPI(t, "key-123")
	m := newMailer(t, api.URL+"/v3", "key-123", 0)
	for status, permanent := range map[int]bool{400: true, 403: true, 429: false, 500: false, 503: false} {
		api.answer(status)
		err := m.Send(context.Background(), msg)
		if err == nil || flow.IsPermanent(err) != permanent {
			t.Errorf("HTTP %d: err %v, permanent %v; want permanent %v", status, err, flow.IsPermanent(err), permanent)
		}
	}
	// A wrong key is a 401 from the server's own check.
	if err := newMailer(t, api.URL+"/v3", "wrong", 0).Send(context.Background(), msg); err == nil || !flow.IsPermanent(err) {
		t.Errorf("wrong key: err %v, want permanent", err)
	}
	if len(api.forms) != 0 {
		t.Errorf("%d refused messages were recorded", len(api.forms))
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	api := startMailgunAPI(t, "key-123")
	api.delay = 2 * time.Second
	start := time.Now()
	err := newMailer(t, api.URL+"/v3", "key-123", 300*time.Millisecond).Send(context.Background(), msg)
	if err == nil || flow.IsPermanent(err) {
		t.Errorf("err %v, want a temporary failure", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a 300ms timeout took %v", d)
	}
}

// TestAgainstMailgunGoMockServer checks the request against the mock server
// that mailgun-go itself ships, as a second opinion on the wire format.
func TestAgainstMailgunGoMockServer(t *testing.T) {
	srv := mailgun.NewMockServer()
	defer srv.Stop()
	if err := newMailer(t, srv.URL(), "key-123", 0).Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range srv.Events() {
		if ev.GetName() == "accepted" {
			found = true
		}
	}
	if !found {
		t.Errorf("the mock server recorded no accepted message: %v", srv.Events())
	}
}

func TestNewChecksConfig(t *testing.T) {
	for name, c := range map[string]mailgunmail.Config{
		"no domain":  {APIKey: "k", From: "a@b.co"},
		"no key":     {Domain: "d", From: "a@b.co"},
		"bad from":   {Domain: "d", APIKey: "k", From: "nope"},
		"bad region": {Domain: "d", APIKey: "k", From: "a@b.co", Region: "ap"},
	} {
		if _, err := mailgunmail.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
