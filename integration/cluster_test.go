package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/redis/go-redis/v9"

	"github.com/otpgate/caddy-email-otp/integration/redisserver"
	"github.com/otpgate/caddy-email-otp/integration/smtpsink"
)

const nodeB = "http://contoso.localhost:9180"

// cluster is two gateway nodes sharing one Redis and one storage: node A
// in this process (port 9080), node B a separate Caddy process (port 9180).
type cluster struct {
	*env
	redis *redisserver.Server
	nodeB *exec.Cmd
}

func startCluster(t *testing.T, extra string) *cluster {
	c := &cluster{env: newEnv(t), redis: redisserver.Start(t)}
	c.smtp = smtpsink.Start(t)
	policy := "allow *@contoso.com\n\t\tstore redis " + c.redis.URL(0) + "\n\t\t" + extra
	c.load(c.contosoSite(policy, ""))
	c.nodeB = startNode(t, asNodeB(c.contosoSite(policy, "")), "127.0.0.1:9180")
	return c
}

// asNodeB is a contoso config as node B serves it: its own ports.
func asNodeB(caddyfile string) string {
	return strings.NewReplacer(
		"admin localhost:2999", "admin localhost:3019",
		"http_port 9080", "http_port 9180",
		"https_port 9443", "https_port 9543",
		"contoso.localhost:9080", "contoso.localhost:9180",
	).Replace(caddyfile)
}

// startNode runs Caddy with the module as its own process until the test
// ends (or the test kills it).
func startNode(t testing.TB, caddyfile, listen string) *exec.Cmd {
	t.Helper()
	bin := buildCaddy(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	logFile, _ := os.Create(filepath.Join(dir, "caddy.log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("node log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			return cmd
		}
	}
	t.Fatalf("the second node did not listen on %s", listen)
	return nil
}

// askRedis runs one command on the cluster's Redis, failing the test on an error.
func askRedis[T any](t *testing.T, c *cluster, cmd func(context.Context, *redis.Client) (T, error)) T {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: c.redis.Addr})
	defer rdb.Close()
	v, err := cmd(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// journalLen is how many code emails Redis holds for the nodes, in every
// journal (one per mailer and keys).
func (c *cluster) journalLen(t *testing.T) int64 {
	t.Helper()
	return askRedis(t, c, func(ctx context.Context, rdb *redis.Client) (int64, error) {
		keys, err := rdb.Keys(ctx, "email_otp:{journal:*}:leases").Result()
		var n int64
		for _, k := range keys {
			m, err := rdb.ZCard(ctx, k).Result()
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, err
	})
}

func TestClusterKillDashNineDuringDeliveryLosesNoCode(t *testing.T) {
	c := startCluster(t, "delivery {\n\t\t\tfirst_retry 1h\n\t\t\tlease 1s\n\t\t}")
	// Node B's first attempt is refused for now: the message waits there
	// for a retry an hour away when B dies.
	c.smtp.Refuse(tempFail)
	g := newGuest(t)
	csrf := g.requestCode(nodeB, hostBase, "/doc", "max@contoso.com")
	for deadline := time.Now().Add(10 * time.Second); c.smtp.Attempts() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node B never tried to deliver the code")
		}
	}
	if n := c.journalLen(t); n != 1 {
		t.Fatalf("the outbox holds %d messages while B retries, want 1", n)
	}
	// Node A's health shows the message B holds: one outbox for both.
	var health []healthReply
	adminAPIAt(t, "/email-otp/health", &health)
	if len(health) != 1 || health[0].Journal == nil || *health[0].Journal != 1 || health[0].Queue != 0 {
		t.Errorf("node A's health while B holds a message: %+v", health)
	}
	// Node A answers the guest from the state B recorded in Redis.
	g.waitForStatus(contoso+hostBase+"status", "retrying")
	if err := c.nodeB.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.nodeB.Wait()
	killed := time.Now()

	mail := c.smtp.Wait(t, "max@contoso.com", 1, 10*time.Second)
	t.Logf("node A delivered the dead node's code %v after the kill", time.Since(killed).Round(time.Millisecond))
	for deadline := time.Now().Add(5 * time.Second); c.journalLen(t) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delivered message stays in the outbox")
		}
	}
	if n := c.smtp.Count("max@contoso.com"); n != 1 {
		t.Errorf("%d code emails, want exactly 1", n)
	}
	// Any node answers the delivery state from Redis, and the code works.
	g.waitForStatus(contoso+hostBase+"status", "on_its_way")
	landed := expectRedirect(t, g.post(contoso+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {codeIn(t, mail.Text)}}), http.StatusSeeOther)
	if landed != "/doc" {
		t.Errorf("landed on %q", landed)
	}
}

func TestClusterSendOnOneNodeVerifyOnTheOther(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/shared/doc", "ada@contoso.com")
	code := codeIn(t, c.smtp.Wait(t, "ada@contoso.com", 1, 10*time.Second).Text)
	landed := expectRedirect(t, g.post(nodeB+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if landed != "/shared/doc" {
		t.Errorf("landed on %q", landed)
	}
	g.backendView(nodeB + "/shared/doc")
	g.backendView(contoso + "/shared/doc")

	// Signed out on B: refused on A within the session cache's bound.
	kept := g.cookie(contoso+"/", "email_otp_session")
	expectStatus(t, g.signOut(nodeB, hostBase), http.StatusOK, "signed out")
	refusedWithin(t, contoso+"/shared/doc", kept, time.Second)
}

// refusedWithin asks u with the session cookie until it is sent to sign in,
// failing past bound, and says how long that took.
func refusedWithin(t *testing.T, u string, session *http.Cookie, bound time.Duration) time.Duration {
	t.Helper()
	g := newGuest(t)
	start := time.Now()
	for {
		r := g.get(u, "Cookie", session.Name+"="+session.Value)
		if r.StatusCode == http.StatusFound {
			return time.Since(start)
		}
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", u, r.StatusCode, r.body)
		}
		if time.Since(start) > bound {
			t.Fatalf("%s still lets the session in %v later (bound %v)", u, time.Since(start), bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClusterSignedInRequestsSkipRedisAndSignOutHoldsEverywhere(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	c.signIn(g, contoso, hostBase, "/", "ida@contoso.com")
	g.backendView(nodeB + "/doc")
	g.backendView(contoso + "/doc")
	before := c.redis.Calls(t, "exists")
	for i := range 200 {
		g.backendView([]string{contoso, nodeB}[i%2] + "/doc")
	}
	perRequest := float64(c.redis.Calls(t, "exists")-before) / 200
	t.Logf("Redis commands per signed-in request: %.3f", perRequest)
	if perRequest > 0.05 {
		t.Errorf("%.3f Redis commands per signed-in request, want at most 0.05", perRequest)
	}

	session := g.cookie(contoso+"/", "email_otp_session")
	expectStatus(t, g.signOut(contoso, hostBase), http.StatusOK, "signed out")
	t.Logf("sign-out on node A refused on node B after %v", refusedWithin(t, nodeB+"/doc", session, time.Second))

	// An admin's revocation on A ends the guest's sessions on B too.
	h := newGuest(t)
	c.signIn(h, contoso, hostBase, "/", "jon@contoso.com")
	h.backendView(nodeB + "/doc")
	if status := adminAPI(t, http.MethodPost, "contoso.localhost/jon@contoso.com/revoke", nil, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d", status)
	}
	t.Logf("revocation on node A refused on node B after %v",
		refusedWithin(t, nodeB+"/doc", h.cookie(contoso+"/", "email_otp_session"), time.Second))
}

func TestClusterSignOutHoldsAcrossARedisRestart(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	c.signIn(g, contoso, hostBase, "/", "kim@contoso.com")
	g.backendView(nodeB + "/doc") // node B now remembers the session
	session := g.cookie(contoso+"/", "email_otp_session")
	c.redis.Stop()
	c.redis.Restart() // every subscription is cut; B may not have resubscribed yet
	expectStatus(t, g.signOut(contoso, hostBase), http.StatusOK, "signed out")
	refusedWithin(t, nodeB+"/doc", session, time.Second)
	// B resubscribes and answers from memory again.
	waitFeed(t, "localhost:3019", "subscribed")
	h := newGuest(t)
	c.signIn(h, nodeB, hostBase, "/", "lou@contoso.com")
	h.backendView(nodeB + "/doc")
	before := c.redis.Calls(t, "exists")
	for range 50 {
		h.backendView(nodeB + "/doc")
	}
	if n := c.redis.Calls(t, "exists") - before; n > 3 {
		t.Errorf("after the restart, 50 signed-in requests on B made %d EXISTS calls", n)
	}
}

func TestClusterWrongTriesAddUpAcrossNodes(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "bea@contoso.com")
	code := codeIn(t, c.smtp.Wait(t, "bea@contoso.com", 1, 10*time.Second).Text)
	form := url.Values{"csrf": {csrf}, "code": {wrongCode(code)}}
	expectStatus(t, g.post(contoso+hostBase+"verify", form), http.StatusUnprocessableEntity, "4 tries left")
	expectStatus(t, g.post(nodeB+hostBase+"verify", form), http.StatusUnprocessableEntity, "3 tries left")
	expectStatus(t, g.post(contoso+hostBase+"verify", form), http.StatusUnprocessableEntity, "2 tries left")
	expectStatus(t, g.post(nodeB+hostBase+"verify", form), http.StatusUnprocessableEntity, "1 try left")
	loc := expectRedirect(t, g.post(contoso+hostBase+"verify", form), http.StatusSeeOther)
	if !strings.Contains(loc, "reason=locked") {
		t.Errorf("fifth wrong try: %q", loc)
	}
	loc = expectRedirect(t, g.post(nodeB+hostBase+"verify", url.Values{"csrf": {csrf}, "code": {code}}), http.StatusSeeOther)
	if !strings.Contains(loc, "reason=expired") {
		t.Errorf("the right code after five wrong ones on two nodes: %q", loc)
	}
}

func TestClusterParallelVerificationIssuesOneSession(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	csrf := g.requestCode(contoso, hostBase, "/", "cid@contoso.com")
	pending := g.cookie(contoso+hostBase, "email_otp_pending")
	code := codeIn(t, c.smtp.Wait(t, "cid@contoso.com", 1, 10*time.Second).Text)
	sessions := verifyBurst(t, []string{contoso, nodeB}, csrf, code, pending)
	if sessions != 1 {
		t.Fatalf("20 parallel submissions of one code across two nodes gave %d sessions, want 1", sessions)
	}
}

func TestClusterFailsClosedWhileRedisIsDownAndResumes(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	c.signIn(g, contoso, hostBase, "/", "dee@contoso.com")
	c.redis.Stop()
	for _, node := range []string{contoso, nodeB} {
		expectStatus(t, g.get(node+"/doc"), http.StatusServiceUnavailable, "could not check your session")
		page := newGuest(t).get(node + hostBase + "signin")
		r := newGuest(t).post(node+hostBase+"send", url.Values{"csrf": {formValue(t, page.body, "csrf")}, "email": {"eve@contoso.com"}},
			"Cookie", cookieHeader(page.Header))
		expectStatus(t, r, http.StatusServiceUnavailable, "Sign-in is unavailable")
	}
	c.redis.Restart()
	for _, node := range []string{contoso, nodeB} {
		g.backendView(node + "/doc")
	}
	c.signIn(newGuest(t), nodeB, hostBase, "/", "eve@contoso.com")
}

func TestClusterSessionGraceKeepsRecentSessionsDuringAnOutage(t *testing.T) {
	c := startCluster(t, "")
	g := newGuest(t)
	c.load(c.contosoSite("allow *@contoso.com\n\t\tstore redis {\n\t\t\taddress "+c.redis.Addr+"\n\t\t\tsession_grace 1m\n\t\t}", ""))
	c.signIn(g, contoso, hostBase, "/", "fay@contoso.com")
	g.backendView(contoso + "/doc") // checked, not revoked: remembered for a minute
	c.redis.Stop()
	g.backendView(contoso + "/doc")
	expectStatus(t, newGuest(t).get(contoso+hostBase+"signin"), http.StatusOK) // the page itself needs no Redis
	c.redis.Restart()
}

func TestRedisStoreRefusesToLoadWithoutRedis(t *testing.T) {
	e := newEnv(t)
	e.smtp = smtpsink.Start(t)
	cfg := e.contosoSite(fmt.Sprintf("allow *\n\t\tstore redis redis://127.0.0.1:%d/0", closedPort(t)), "")
	caddytest.AssertLoadError(t, cfg, "caddyfile", "cannot use Redis")
}

func cookieHeader(h http.Header) string {
	var parts []string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}
