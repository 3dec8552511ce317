package integration

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

// BenchmarkSignInStorm: STORM_GUESTS guests (default 50) sign in at once,
// each through the whole flow against Caddy processes with the SMTP mailer
// and a local SMTP sink that takes stormSMTPDelay (or ten times that) per
// message: the sign-in
// page, send (answer timed), the code from the mail, verify (answer timed),
// the first document. With two nodes a guest sends on one and verifies and
// opens the document on the other. An iteration is one storm on fresh
// nodes. `./xcaddy.sh bench storm` runs it for RESULTS.md.
func BenchmarkSignInStorm(b *testing.B) {
	guests := 50
	if n, err := strconv.Atoi(os.Getenv("STORM_GUESTS")); err == nil && n > 0 {
		guests = n
	}
	for _, c := range []struct {
		name      string
		redis     bool
		nodes     int
		smtpDelay time.Duration
	}{
		{"memory-1-node", false, 1, stormSMTPDelay},
		{"redis-1-node", true, 1, stormSMTPDelay},
		{"redis-2-nodes", true, 2, stormSMTPDelay},
		// A mail server ten times slower: the send answer must not move.
		{"memory-1-node-slow-smtp", false, 1, 10 * stormSMTPDelay},
	} {
		b.Run(c.name, func(b *testing.B) {
			var all []stormResult
			for range b.N {
				all = append(all, runStorm(b, guests, c.redis, c.nodes, c.smtpDelay))
			}
			// The median storm by sign-ins per second.
			slices.SortFunc(all, func(x, y stormResult) int { return cmp.Compare(x.perSecond, y.perSecond) })
			r := all[len(all)/2]
			b.ReportMetric(r.perSecond, "signins/s")
			b.ReportMetric(ms(r.send[len(r.send)/2]), "send-p50-ms")
			b.ReportMetric(ms(r.send[len(r.send)*99/100]), "send-p99-ms")
			b.ReportMetric(ms(r.verify[len(r.verify)/2]), "verify-p50-ms")
			b.ReportMetric(ms(r.verify[len(r.verify)*99/100]), "verify-p99-ms")
			b.ReportMetric(float64(r.mails), "mails")
			b.ReportMetric(r.redisPerSignIn, "redis-cmds/signin")
			b.ReportMetric(r.rssMB, "peak-rss-MB/node")
			b.ReportMetric(0, "ns/op") // the storm's own figures say it
		})
	}
}

const stormSMTPDelay = 50 * time.Millisecond

type stormResult struct {
	perSecond      float64
	send, verify   []time.Duration // sorted
	mails          int
	redisPerSignIn float64
	rssMB          float64 // the largest node's peak resident memory
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runStorm(b *testing.B, guests int, useRedis bool, nodes int, smtpDelay time.Duration) stormResult {
	b.StopTimer()
	sink := smtpsink.StartWith(b, smtpsink.Options{Delay: smtpDelay})
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("document")) })}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = backend.Serve(l) }()
	b.Cleanup(func() { _ = backend.Close() })
	storage := b.TempDir()
	store := ""
	var redisSrv *redisserver.Server
	if useRedis {
		redisSrv = redisserver.Start(b)
		store = "store redis " + redisSrv.URL(0)
	}
	var origins []string
	var procs []*exec.Cmd
	for i := range nodes {
		port := 9480 + i
		cfg := fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	auto_https off
	storage file_system %s
	log {
		output discard
	}
}
http://localhost:%d {
	email_otp {
		allow *@storm.example
		%s
		mailer smtp {
			host 127.0.0.1
			port %d
			tls none
			from docs@example.com
		}
		delivery {
			workers 16
		}
		limits {
			per_ip 1000000 1h
			per_tenant 1000000 1h
		}
	}
	reverse_proxy %s
}
`, 9490+i, port, storage, port, store, sink.Port, l.Addr())
		procs = append(procs, startNode(b, cfg, fmt.Sprintf("127.0.0.1:%d", port)))
		origins = append(origins, fmt.Sprintf("http://localhost:%d", port))
	}
	codes := newCodeBox(sink)
	defer codes.stop()
	commands := func() float64 {
		if redisSrv == nil {
			return 0
		}
		return redisSrv.CommandsProcessed(b)
	}

	before := commands()
	var mu sync.Mutex
	var send, verify []time.Duration
	var failures []string
	start := make(chan struct{})
	var wg sync.WaitGroup
	b.StartTimer()
	began := time.Now()
	for i := range guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			addr := fmt.Sprintf("guest%04d@storm.example", i)
			s, v, err := stormGuest(origins[i%nodes], origins[(i+1)%nodes], addr, codes)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, addr+": "+err.Error())
				return
			}
			send, verify = append(send, s), append(verify, v)
		}()
	}
	close(start)
	wg.Wait()
	took := time.Since(began)
	b.StopTimer()
	if len(failures) > 0 {
		b.Fatalf("%d of %d guests did not get in, e.g. %s", len(failures), guests, failures[0])
	}
	slices.Sort(send)
	slices.Sort(verify)
	r := stormResult{perSecond: float64(guests) / took.Seconds(), send: send, verify: verify, mails: len(sink.Messages())}
	if redisSrv != nil {
		r.redisPerSignIn = (commands() - before) / float64(guests)
	}
	for _, p := range procs {
		r.rssMB = max(r.rssMB, peakRSSMB(p.Process.Pid))
		// The next storm starts its nodes on the same ports.
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	return r
}

// stormGuest signs one guest in: send on one node, verify and the first
// document on the other (the same with one node).
func stormGuest(sendOn, verifyOn, addr string, codes *codeBox) (sendTook, verifyTook time.Duration, err error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (string, int, error) {
		resp, err := client.Get(u)
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), resp.StatusCode, err
	}
	post := func(u string, form url.Values) (time.Duration, int, error) {
		start := time.Now()
		resp, err := client.PostForm(u, form)
		took := time.Since(start)
		if err != nil {
			return 0, 0, err
		}
		resp.Body.Close()
		return took, resp.StatusCode, nil
	}
	page, _, err := get(sendOn + "/.email-otp/signin?rd=/doc")
	if err != nil {
		return 0, 0, err
	}
	csrf := inputValue(page, "csrf")
	sendTook, status, err := post(sendOn+"/.email-otp/send", url.Values{"csrf": {csrf}, "rd": {"/doc"}, "email": {addr}})
	if err != nil || status != http.StatusSeeOther {
		return 0, 0, fmt.Errorf("send: %d %v", status, err)
	}
	code, ok := codes.wait(addr, 30*time.Second)
	if !ok {
		return 0, 0, fmt.Errorf("no code email within 30s")
	}
	page, _, err = get(verifyOn + "/.email-otp/verify")
	if err != nil {
		return 0, 0, err
	}
	verifyTook, status, err = post(verifyOn+"/.email-otp/verify", url.Values{"csrf": {inputValue(page, "csrf")}, "code": {code}})
	if err != nil || status != http.StatusSeeOther {
		return 0, 0, fmt.Errorf("verify: %d %v", status, err)
	}
	if body, status, err := get(verifyOn + "/doc"); err != nil || status != http.StatusOK || body != "document" {
		return 0, 0, fmt.Errorf("first document: %d %v", status, err)
	}
	return sendTook, verifyTook, nil
}

func inputValue(page, name string) string {
	for _, m := range inputRE.FindAllStringSubmatch(page, -1) {
		if m[1] == name {
			return htmlUnescape(m[2])
		}
	}
	return ""
}

// codeBox hands each guest the code from its mail as the sink receives it.
type codeBox struct {
	mu    sync.Mutex
	codes map[string]string
	done  chan struct{}
}

func newCodeBox(sink *smtpsink.Sink) *codeBox {
	c := &codeBox{codes: map[string]string{}, done: make(chan struct{})}
	go func() {
		seen := 0
		for {
			msgs := sink.Messages()
			for _, m := range msgs[seen:] {
				if code := codeRE.FindStringSubmatch(m.Text); code != nil && len(m.To) > 0 {
					c.mu.Lock()
					c.codes[strings.ToLower(m.To[0])] = code[1]
					c.mu.Unlock()
				}
			}
			seen = len(msgs)
			select {
			case <-c.done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return c
}

func (c *codeBox) wait(addr string, timeout time.Duration) (string, bool) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		c.mu.Lock()
		code, ok := c.codes[addr]
		c.mu.Unlock()
		if ok {
			return code, true
		}
	}
	return "", false
}

func (c *codeBox) stop() { close(c.done) }

// peakRSSMB is a process's peak resident memory (VmHWM), in MB.
func peakRSSMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
