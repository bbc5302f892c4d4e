package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/internal/testproc"
)

const (
	// readyTimeout bounds how long a fresh redis-server may take to answer.
	// It is generous because CI machines under -race can be slow to fork.
	readyTimeout = 20 * time.Second
	// bindAttempts is how many ports Start tries when another process wins
	// the race for the port between probing it and redis-server binding it.
	bindAttempts = 5
	// logName and outName are the files in the server's directory that
	// receive redis-server's log and its stdout/stderr.
	logName = "redis.log"
	outName = "stdout.log"
)

// installHint tells a developer how to get redis-server when it is missing.
const installHint = "install it with `apt-get install redis-server` " +
	"(or run scripts/test.sh, which installs it when run as root)"

// RequireRedis fails the test when redis-server is not on PATH, with a message
// that says how to install it. [Start] and [StartCluster] call it themselves;
// call it directly in tests that only need to know Redis is available.
func RequireRedis(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redistest: redis-server not found on PATH; %s", installHint)
	}
}

// requireCLI fails the test when redis-cli is missing; only clusters need it.
func requireCLI(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redistest: redis-cli not found on PATH; %s", installHint)
	}
}

// Server is one redis-server process owned by a test. Its methods may be
// called from any goroutine; those that can fail report through the
// testing.TB given to [Start], so call them from the test's own goroutine
// when they may fail (Pause, Resume and Restart on a healthy server do not).
type Server struct {
	t        testing.TB
	dir      string
	port     int
	args     []string   // everything after --port, fixed for the server's life
	password string     // from --requirepass, used by Client, Do and URL
	tls      *serverTLS // nil for a plain server

	mu     sync.Mutex
	proc   *testproc.Process // nil while killed; guarded by mu
	paused bool              // true between Pause and Resume; guarded by mu
}

// Start starts a fresh redis-server on a free 127.0.0.1 port with its
// working directory in t.TempDir() and no persistence (--save "",
// --appendonly no), waits until it answers, and kills it in t.Cleanup.
//
// args are extra redis-server arguments such as "--requirepass", "secret".
// They come after the harness's own, so they override them. A password set
// with --requirepass is used by [Server.Client], [Server.Do] and
// [Server.URL].
//
// If redis-server is not on PATH, Start fails the test with a message that
// says how to install it. If the server does not come up, the message carries
// the tail of its log.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, false, args)
}

// start is Start with the option to reserve the cluster bus port (port+10000)
// as well.
func start(t testing.TB, cluster bool, extra []string) *Server {
	t.Helper()
	RequireRedis(t)
	return startIn(t, t.TempDir(), cluster, nil, extra)
}

// startIn starts a server whose files go to dir, speaking TLS when tc is
// set.
func startIn(t testing.TB, dir string, cluster bool, tc *serverTLS, extra []string) *Server {
	t.Helper()
	s := &Server{
		t:        t,
		dir:      dir,
		password: passwordFrom(extra),
		tls:      tc,
	}
	s.args = append(baseArgs(dir), extra...)

	var lastErr error
	for range bindAttempts {
		port, err := freePort(cluster)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.port = port
		lastErr = s.launch()
		if lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
		if !errors.Is(lastErr, testproc.ErrPortInUse) {
			break
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// baseArgs are the arguments every server gets: loopback only, files in
// dir, nothing persisted, logs captured for failure messages.
func baseArgs(dir string) []string {
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--logfile", filepath.Join(dir, logName),
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
	}
	if redisMajor() >= 7 {
		// Lets tests use DEBUG SLEEP and friends; only loopback clients exist.
		args = append(args, "--enable-debug-command", "local")
	}
	return args
}

// passwordFrom finds the value of a "--requirepass" argument.
func passwordFrom(args []string) string {
	pw := ""
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--requirepass" {
			pw = args[i+1]
		}
	}
	return pw
}

var (
	majorOnce sync.Once
	major     int
)

// redisMajor returns redis-server's major version, or 0 if unknown.
func redisMajor() int {
	majorOnce.Do(func() {
		out, err := exec.Command("redis-server", "--version").Output()
		if err != nil {
			return
		}
		// "Redis server v=7.0.15 sha=..."
		_, rest, ok := strings.Cut(string(out), "v=")
		if !ok {
			return
		}
		num, _, _ := strings.Cut(rest, ".")
		major, _ = strconv.Atoi(num)
	})
	return major
}

// launch starts redis-server on s.port and waits until it answers. On
// failure the process is gone and the error carries the tail of its log.
func (s *Server) launch() error {
	logPath := filepath.Join(s.dir, logName)
	logStart := testproc.FileSize(logPath)
	outPath := filepath.Join(s.dir, outName)
	outStart := testproc.FileSize(outPath)

	port := []string{"--port", strconv.Itoa(s.port)}
	if s.tls != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port)}
	}
	p, err := testproc.Start(s.dir, outPath, "redis-server", append(port, s.args...)...)
	if err != nil {
		return err
	}

	if err := waitReady(p, s.dialer(), s.password); err != nil {
		_ = p.Kill()
		logTail := testproc.TailSince(logPath, logStart)
		outTail := testproc.TailSince(outPath, outStart)
		msg := fmt.Sprintf("%v\n--- %s ---\n%s\n--- %s ---\n%s", err, logName, logTail, outName, outTail)
		if strings.Contains(logTail, "Address already in use") || strings.Contains(outTail, "Address already in use") {
			return fmt.Errorf("%w on port %d: %s", testproc.ErrPortInUse, s.port, msg)
		}
		return fmt.Errorf("port %d: %s", s.port, msg)
	}

	s.mu.Lock()
	s.proc = p
	s.paused = false
	s.mu.Unlock()
	return nil
}

// waitReady polls until the process answers INFO with its own pid, so a
// different server that grabbed the port cannot be mistaken for ours.
func waitReady(p *testproc.Process, d dialer, password string) error {
	want := "process_id:" + strconv.Itoa(p.Pid())
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("redis-server exited during startup: %v", p.State())
		default:
		}
		info, err := rawDo(d, password, 500*time.Millisecond, "INFO", "server")
		if err == nil {
			if strings.Contains(info, want+"\r\n") || strings.HasSuffix(info, want) {
				return nil
			}
			err = errors.New("another process answers on this port")
		}
		lastErr = err
		select {
		case <-p.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("redis-server not ready after %v: %v", readyTimeout, lastErr)
}

// stop is the Cleanup function: kill whatever runs and release the log file.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.paused = false
	s.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.Kill(); err != nil {
		s.t.Errorf("redistest: %v", err)
	}
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's TCP port. It stays the same across [Server.Restart].
func (s *Server) Port() int { return s.port }

// URL returns a redis:// URL for database 0, "redis://127.0.0.1:PORT/0",
// with the password in it when the server was started with --requirepass.
// For a server started with [StartTLS] it is a rediss:// URL; a client
// also needs the server's certificate authority to trust it.
func (s *Server) URL() string {
	if s.password != "" {
		return s.URLFor("", s.password)
	}
	return s.scheme() + "://" + s.Addr() + "/0"
}

// URLFor returns the server's URL (as [Server.URL]) for logging in as user
// with password, such as a user made with [Server.AddUser]. An empty user
// is the default user.
func (s *Server) URLFor(user, password string) string {
	return s.scheme() + "://" + url.UserPassword(user, password).String() + "@" + s.Addr() + "/0"
}

func (s *Server) scheme() string {
	if s.tls != nil {
		return "rediss"
	}
	return "redis"
}

// AddUser creates (or changes) the ACL user name with password and the
// given rules, as ACL SETUSER name reset on >password rules... does: a
// user that starts with no rights at all, then gets the rules, such as
// "~myapp:*", "&layercache:myapp:*", "+@read", "+get". It fails the test
// if the server refuses a rule.
func (s *Server) AddUser(t testing.TB, name, password string, rules ...string) {
	t.Helper()
	args := []any{"ACL", "SETUSER", name, "reset", "on", ">" + password}
	for _, r := range rules {
		args = append(args, r)
	}
	s.Do(t, args...)
}

// dialer connects to the server as its clients must: with TLS when the
// server speaks it.
func (s *Server) dialer() dialer {
	return dialer{addr: s.Addr(), tls: s.TLSConfig()}
}

// Dir returns the server's working directory (its log is redis.log there).
func (s *Server) Dir() string { return s.dir }

// Pid returns the process id of the running redis-server, or 0 after
// [Server.Kill].
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid()
}

// Client returns a new go-redis client for the server with go-redis's
// default options, the server's password, and ContextTimeoutEnabled, as
// layercache asks of the clients it is given (so a paused server costs an
// operation its context deadline, not the client's ReadTimeout). It is
// closed in t.Cleanup, which runs before the server is stopped.
func (s *Server) Client(t testing.TB) *goredis.Client {
	t.Helper()
	if s.tls == nil {
		return ClientFor(t, s.Addr(), s.password)
	}
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Password: s.password, TLSConfig: s.TLSConfig(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ClientFor returns a client like [Server.Client] for any address, such
// as a [Proxy]'s.
func ClientFor(t testing.TB, addr, password string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Password: password, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do runs one command on a short-lived connection and returns its reply as
// go-redis's Do does (a nil reply is returned as nil, not as an error). It
// fails the test on any error, including a timeout of 10 seconds.
func (s *Server) Do(t testing.TB, args ...any) any {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr:            s.Addr(),
		Password:        s.password,
		TLSConfig:       s.TLSConfig(),
		PoolSize:        1,
		MaxRetries:      -1, // a failed command is reported, not retried
		DisableIdentity: true,
	})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.Do(ctx, args...).Result()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	if err != nil {
		t.Fatalf("redistest: %v on %s: %v", args, s.Addr(), err)
	}
	return v
}

// Pause stops the process with SIGSTOP. Connections stay open and commands
// are accepted by the kernel but get no reply until [Server.Resume].
func (s *Server) Pause() {
	s.t.Helper()
	s.signal("Pause", (*testproc.Process).Pause, true)
}

// Resume continues a paused process with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal("Resume", func(p *testproc.Process) error { return p.Signal(syscall.SIGCONT) }, false)
}

// signal applies send to the running process.
func (s *Server) signal(op string, send func(*testproc.Process) error, paused bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatalf("redistest: %s on a server that is not running (killed?)", op)
		return
	}
	if err := send(s.proc); err != nil {
		s.t.Fatalf("redistest: %s: %v", op, err)
		return
	}
	s.paused = paused
}

// Kill kills the process with SIGKILL and waits until it has exited, so that
// its port is closed when Kill returns. Killing a killed server does nothing.
// The data set is lost: there is no persistence.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.paused = false
	s.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.Kill(); err != nil {
		s.t.Fatalf("redistest: Kill: %v", err)
	}
}

// Restart starts the server again on the same port and with the same
// arguments, killing it first if it is running, and waits until it answers.
// The new process starts with an empty data set (a cluster node keeps its
// cluster configuration, which lives in nodes.conf).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := testproc.Relaunch(s.launch); err != nil {
		s.t.Fatalf("redistest: Restart: %v", err)
	}
}

// freePort returns a loopback port that was free a moment ago. With bus set
// it also checks port+10000, the Redis Cluster bus port.
func freePort(bus bool) (int, error) {
	var lastErr error
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lastErr = err
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		if bus {
			if port+10000 > 65535 {
				l.Close()
				continue
			}
			b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
			if err != nil {
				l.Close()
				lastErr = err
				continue
			}
			b.Close()
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port: %v", lastErr)
}
