// Package redisserver starts a real redis-server for tests, on a free
// loopback port, with nothing persisted; it can be stopped and started again
// on the same port to test outages.
package redisserver

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int

	t   testing.TB
	dir string
	cmd *exec.Cmd
	// info is the client Info asks through, made once: a new connection
	// per question would add its handshake to the commands counted.
	info *redis.Client
}

// Start starts redis-server; the test fails, saying how to install it, if
// there is none. It stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed: `apt-get install redis-server` (Debian) or put it on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, t: t, dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again after Stop, on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			return
		}
	}
	s.t.Fatalf("redis-server did not listen on %s within 10s", s.Addr)
}

// Stop ends the server (its data goes with it).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// URL is the server's redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// Info is one field of an INFO section as the server reports it, "" when
// absent: Info(t, "stats", "total_commands_processed").
func (s *Server) Info(t testing.TB, section, field string) string {
	t.Helper()
	if s.info == nil {
		s.info = redis.NewClient(&redis.Options{Addr: s.Addr})
		s.t.Cleanup(func() { s.info.Close() })
	}
	text, err := s.info.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	for _, line := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

// CommandsProcessed is how many commands the server has run, as it counts
// them: the commands inside Lua scripts included.
func (s *Server) CommandsProcessed(t testing.TB) float64 {
	t.Helper()
	n, _ := strconv.ParseFloat(s.Info(t, "stats", "total_commands_processed"), 64)
	return n
}

// Calls is how many times the server has run command name ("exists").
func (s *Server) Calls(t testing.TB, name string) int64 {
	t.Helper()
	stat := s.Info(t, "commandstats", "cmdstat_"+name) // calls=N,usec=…
	calls, _, _ := strings.Cut(strings.TrimPrefix(stat, "calls="), ",")
	n, _ := strconv.ParseInt(calls, 10, 64)
	return n
}
