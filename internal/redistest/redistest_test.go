package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/layercache/layercache/internal/testproc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// timeoutClient is a go-redis client that gives up on a command when its
// context ends and never retries, so fault tests see the first failure.
func timeoutClient(t *testing.T, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           2 * time.Second,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or 10 seconds have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fatalRecorder is a testing.TB whose Fatal ends the calling goroutine and
// records the message instead of failing the real test, so the harness's own
// failure messages can be checked. Everything else goes to the real test.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// fatalOf runs f with a recorder in its own goroutine and returns the Fatal
// message, or "" if f returned normally.
func fatalOf(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

func TestStart_AnswersPingOnLoopback(t *testing.T) {
	t.Parallel()
	s := Start(t)

	if got := s.Do(t, "PING"); got != "PONG" {
		t.Fatalf("PING = %v, want PONG", got)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); s.Addr() != want {
		t.Fatalf("Addr = %q, want %q", s.Addr(), want)
	}
	if want := fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port()); s.URL() != want {
		t.Fatalf("URL = %q, want %q", s.URL(), want)
	}
	opt, err := goredis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if opt.Addr != s.Addr() || opt.DB != 0 {
		t.Fatalf("ParseURL(URL) = %s db %d", opt.Addr, opt.DB)
	}

	c := s.Client(t)
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := s.Do(t, "GET", "k"); got != "v" {
		t.Fatalf("GET k = %v, want v", got)
	}
	if got := s.Do(t, "GET", "missing"); got != nil {
		t.Fatalf("GET missing = %v, want nil", got)
	}
	// No persistence: nothing may be written to the working directory.
	if got := s.Do(t, "CONFIG", "GET", "save"); fmt.Sprint(got) != "map[save:]" && fmt.Sprint(got) != "[save ]" {
		t.Fatalf("CONFIG GET save = %v, want empty", got)
	}
}

func TestStart_ServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Port() == b.Port() {
		t.Fatalf("two servers on port %d", a.Port())
	}
	a.Do(t, "SET", "k", "a")
	if got := b.Do(t, "GET", "k"); got != nil {
		t.Fatalf("second server sees first server's key: %v", got)
	}
}

func TestStart_RequirePassIsUsedByClientDoAndURL(t *testing.T) {
	t.Parallel()
	s := Start(t, "--requirepass", "s3cret")

	if _, err := rawDo(s.dialer(), "", time.Second, "PING"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("unauthenticated PING: err = %v, want NOAUTH", err)
	}
	if got := s.Do(t, "PING"); got != "PONG" {
		t.Fatalf("Do PING = %v", got)
	}
	if err := s.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Client PING: %v", err)
	}
	opt, err := goredis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if opt.Password != "s3cret" {
		t.Fatalf("URL %q carries password %q", s.URL(), opt.Password)
	}
}

func TestStart_FailureReportsRedisOutput(t *testing.T) {
	t.Parallel()
	msg := fatalOf(t, func(tb testing.TB) { Start(tb, "--no-such-directive", "x") })
	if msg == "" {
		t.Fatal("Start with a bad directive did not fail")
	}
	t.Logf("failure message:\n%s", msg)
	if !strings.Contains(msg, "no-such-directive") {
		t.Fatalf("failure message lacks redis-server's complaint:\n%s", msg)
	}
}

func TestLaunch_TakenPortIsReportedForRetry(t *testing.T) {
	t.Parallel()
	RequireRedis(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	s := &Server{t: t, dir: dir, port: l.Addr().(*net.TCPAddr).Port, args: baseArgs(dir)}
	if err := s.launch(); !errors.Is(err, testproc.ErrPortInUse) {
		t.Fatalf("launch on a taken port: %v, want ErrPortInUse", err)
	}
	if s.Pid() != 0 {
		t.Fatalf("a failed launch left pid %d running", s.Pid())
	}
}

func TestRequireRedis_MissingBinaryExplainsInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	msg := fatalOf(t, func(tb testing.TB) { RequireRedis(tb) })
	if !strings.Contains(msg, "apt-get install redis-server") || !strings.Contains(msg, "scripts/test.sh") {
		t.Fatalf("message does not say how to install: %q", msg)
	}
}

func TestPause_CommandsTimeOutUntilResume(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := timeoutClient(t, s.Addr())
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}

	s.Pause()
	err := c.Ping(ctxTimeout(t, 200*time.Millisecond)).Err()
	if err == nil {
		t.Fatal("PING on a paused server succeeded")
	}
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("PING on a paused server: %v, want a timeout", err)
	}

	s.Resume()
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}

func TestPause_CleanupKillsPausedServer(t *testing.T) {
	t.Parallel()
	var pid int
	t.Run("paused", func(t *testing.T) {
		s := Start(t)
		pid = s.Pid()
		s.Pause()
	})
	// The subtest's cleanup has run: the process must be gone, not stopped.
	if pid == 0 {
		t.Fatal("no pid recorded")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("redis-server pid %d still exists after Cleanup", pid)
	}
}

func TestKill_RestartOnSamePort(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := s.Client(t)
	port, pid := s.Port(), s.Pid()
	s.Do(t, "SET", "k", "v")

	s.Kill()
	if s.Pid() != 0 {
		t.Fatalf("Pid after Kill = %d, want 0", s.Pid())
	}
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Fatal("port still accepts connections after Kill")
	}
	s.Kill() // killing a killed server is a no-op

	s.Restart()
	if s.Port() != port {
		t.Fatalf("Restart moved the server from port %d to %d", port, s.Port())
	}
	if s.Pid() == pid || s.Pid() == 0 {
		t.Fatalf("Restart kept pid %d (now %d)", pid, s.Pid())
	}
	if got := s.Do(t, "GET", "k"); got != nil {
		t.Fatalf("GET after restart = %v, want nil (no persistence)", got)
	}
	// A client made before the crash reconnects to the new process.
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("old client after Restart: %v", err)
	}

	// Restart also works on a running (and even a paused) server.
	s.Pause()
	s.Restart()
	if got := s.Do(t, "PING"); got != "PONG" {
		t.Fatalf("PING after second Restart = %v", got)
	}
}

func TestProxy_ForwardsAndCountsRoundTrips(t *testing.T) {
	t.Parallel()
	s := Start(t)
	p := NewProxy(t, s.Addr())
	c := timeoutClient(t, p.Addr())
	ctx := ctxTimeout(t, 10*time.Second)

	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := s.Do(t, "GET", "k"); got != "v" {
		t.Fatalf("SET through the proxy did not reach the server: %v", got)
	}
	if p.Accepted() != 1 || p.Active() != 1 {
		t.Fatalf("Accepted=%d Active=%d, want 1 and 1", p.Accepted(), p.Active())
	}
	// go-redis sends pipelines over a pool of their own: open that
	// connection too, so the counts below see only the commands.
	pipeline := func() {
		t.Helper()
		cmds, err := c.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
			for i := range 20 {
				pipe.Set(ctx, fmt.Sprint("p", i), i, 0)
			}
			return nil
		})
		if err != nil || len(cmds) != 20 {
			t.Fatalf("pipeline: %d cmds, %v", len(cmds), err)
		}
	}
	pipeline()

	p.Reset()
	for range 5 {
		if err := c.Get(ctx, "k").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.UpstreamWrites(); got != 5 {
		t.Fatalf("UpstreamWrites after 5 GETs = %d, want 5", got)
	}
	pipeline()
	if got := p.UpstreamWrites(); got != 6 {
		t.Fatalf("UpstreamWrites after a pipeline of 20 = %d, want 6", got)
	}
	if p.Accepted() != 0 || p.Active() != 2 {
		t.Fatalf("Accepted=%d Active=%d after Reset, want 0 and 2 (pooled connections are reused)", p.Accepted(), p.Active())
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Active to drop to 0 after the client closed", func() bool { return p.Active() == 0 })
}

func TestProxy_DelayAddsToEveryRoundTrip(t *testing.T) {
	t.Parallel()
	s := Start(t)
	p := NewProxy(t, s.Addr())
	c := timeoutClient(t, p.Addr())
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}

	// The delay applies to the already open, pooled connection.
	const up, down = 60 * time.Millisecond, 40 * time.Millisecond
	p.SetDelay(up, down)
	p.Reset()
	start := time.Now()
	for range 3 {
		if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 3*(up+down) {
		t.Fatalf("3 round trips took %v, want at least %v", took, 3*(up+down))
	}
	if p.UpstreamWrites() != 3 || p.Accepted() != 0 {
		t.Fatalf("UpstreamWrites=%d Accepted=%d, want 3 and 0", p.UpstreamWrites(), p.Accepted())
	}

	// A delay longer than the caller's deadline turns into a timeout.
	p.SetDelay(0, time.Second)
	if err := c.Ping(ctxTimeout(t, 100*time.Millisecond)).Err(); err == nil {
		t.Fatal("PING with a 1s reply delay and a 100ms deadline succeeded")
	}

	p.SetDelay(0, 0)
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("PING after clearing the delay: %v", err)
	}
}

func TestProxy_BlackHoleHangsClientsUntilTimeout(t *testing.T) {
	t.Parallel()
	s := Start(t)
	p := NewProxy(t, s.Addr())
	c := timeoutClient(t, p.Addr())
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}

	p.SetBlackHole(true)
	p.Reset()
	s.Do(t, "CONFIG", "RESETSTAT")
	if err := c.Set(ctxTimeout(t, 200*time.Millisecond), "k", "v", 0).Err(); err == nil {
		t.Fatal("SET through a black hole succeeded")
	}
	if got := s.Do(t, "GET", "k"); got != nil {
		t.Fatalf("SET reached the server through a black hole: %v", got)
	}
	if p.UpstreamWrites() != 0 {
		t.Fatalf("UpstreamWrites during black hole = %d, want 0", p.UpstreamWrites())
	}

	// New connections are accepted but hang too.
	c2 := timeoutClient(t, p.Addr())
	if err := c2.Ping(ctxTimeout(t, 200*time.Millisecond)).Err(); err == nil {
		t.Fatal("PING on a new connection through a black hole succeeded")
	}
	if p.Accepted() < 1 {
		t.Fatalf("Accepted during black hole = %d, want >= 1", p.Accepted())
	}

	p.SetBlackHole(false)
	if err := c.Set(ctxTimeout(t, 5*time.Second), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET after the black hole ended: %v", err)
	}
	if got := s.Do(t, "GET", "k"); got != "v" {
		t.Fatalf("GET after the black hole ended = %v, want v", got)
	}
}

func TestProxy_CloseConnectionsGivesClientsEOF(t *testing.T) {
	t.Parallel()
	s := Start(t)
	p := NewProxy(t, s.Addr())

	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING through proxy: %q, %v", line, err)
	}

	p.CloseConnections()
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(fmt.Sprint(err), "reset") {
		t.Fatalf("read after CloseConnections: %v, want EOF", err)
	}
	eventually(t, "Active to drop to 0", func() bool { return p.Active() == 0 })

	// The proxy keeps serving new connections.
	if err := timeoutClient(t, p.Addr()).Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("PING after CloseConnections: %v", err)
	}
}

func TestProxy_DeadTargetClosesClientConnection(t *testing.T) {
	t.Parallel()
	s := Start(t)
	p := NewProxy(t, s.Addr())
	s.Kill()

	c := timeoutClient(t, p.Addr())
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err == nil {
		t.Fatal("PING through a proxy to a dead server succeeded")
	}
	s.Restart()
	if err := c.Ping(ctxTimeout(t, 5*time.Second)).Err(); err != nil {
		t.Fatalf("PING after the target came back: %v", err)
	}

	p.Close()
	if conn, err := net.Dial("tcp", p.Addr()); err == nil {
		conn.Close()
		t.Fatal("a closed proxy still accepts connections")
	}
}

func TestStartCluster_KeysSpreadOverMasters(t *testing.T) {
	t.Parallel()
	cl := StartCluster(t, 3)
	if len(cl.Nodes()) != 3 || len(cl.Addrs()) != 3 {
		t.Fatalf("%d nodes, %d addrs, want 3", len(cl.Nodes()), len(cl.Addrs()))
	}
	cc := cl.Client(t)
	ctx := ctxTimeout(t, 20*time.Second)

	const n = 30
	for i := range n {
		if err := cc.Set(ctx, fmt.Sprint("key:", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	for i := range n {
		got, err := cc.Get(ctx, fmt.Sprint("key:", i)).Int()
		if err != nil || got != i {
			t.Fatalf("GET key:%d = %d, %v", i, got, err)
		}
	}

	// The keys landed on more than one master, so the client really routed
	// by slot rather than talking to a single node.
	total, holders := int64(0), 0
	for _, s := range cl.Nodes() {
		k := s.Do(t, "DBSIZE").(int64)
		total += k
		if k > 0 {
			holders++
		}
	}
	if total != n || holders < 2 {
		t.Fatalf("%d keys on %d masters, want %d keys on at least 2", total, holders, n)
	}
}
