// Package mailgunapi is an HTTP server for tests that speaks Mailgun's send
// endpoint: POST /v3/<domain>/messages with basic auth "api:<key>" and a
// multipart form. It records what it accepted and answers with the statuses
// a test asks for.
package mailgunapi

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Server is a running fake of Mailgun's API.
type Server struct {
	*httptest.Server
	// Delay is how long each request waits before its answer.
	Delay time.Duration

	mu       sync.Mutex
	forms    []map[string][]string
	statuses []int
}

// Start starts a server for one sending domain and API key; it stops when
// the test ends. Its API base is URL + "/v3".
func Start(t testing.TB, domain, key string) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(s.Delay)
		w.Header().Set("Content-Type", "application/json")
		user, pass, ok := r.BasicAuth()
		if !ok || user != "api" || pass != key {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Invalid private key"}`))
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v3/"+domain+"/messages" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"Domain not found"}`))
			return
		}
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"message":"'from' parameter is missing"}`))
			return
		}
		s.mu.Lock()
		status := http.StatusOK
		if len(s.statuses) > 0 {
			status, s.statuses = s.statuses[0], s.statuses[1:]
		}
		if status == http.StatusOK {
			s.forms = append(s.forms, r.MultipartForm.Value)
		}
		s.mu.Unlock()
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write([]byte(`{"id":"<20261123.1@` + domain + `>","message":"Queued. Thank you."}`))
		} else {
			_, _ = w.Write([]byte(`{"message":"refused by the test"}`))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// Answer makes the next requests get these statuses, in order; later ones get 200.
func (s *Server) Answer(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = append(s.statuses, statuses...)
}

// Forms returns the form values of every accepted message.
func (s *Server) Forms() []map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string][]string(nil), s.forms...)
}
