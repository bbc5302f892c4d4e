package memcachedtest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/internal/testproc"
)

const (
	// readyTimeout bounds how long a fresh memcached may take to answer.
	// It is generous because CI machines under -race can be slow to fork.
	readyTimeout = 20 * time.Second
	// bindAttempts is how many ports Start tries when another process wins
	// the race for the port between probing it and memcached binding it.
	bindAttempts = 5
	// logName is the file in the server's directory that receives
	// memcached's stdout and stderr.
	logName = "memcached.log"
)

// installHint tells a developer how to get memcached when it is missing.
const installHint = "install it with `apt-get install memcached` " +
	"(or run scripts/test.sh, which installs it when run as root)"

// RequireMemcached fails the test when memcached is not on PATH, with a
// message that says how to install it. [Start] calls it itself; call it
// directly in tests that only need to know memcached is available.
func RequireMemcached(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Fatalf("memcachedtest: memcached not found on PATH; %s", installHint)
	}
}

// Server is one memcached process owned by a test. Its methods may be
// called from any goroutine; those that can fail report through the
// testing.TB given to [Start], so call them from the test's own goroutine
// when they may fail (Pause, Resume and Restart on a healthy server do not).
type Server struct {
	t    testing.TB
	dir  string
	port int
	args []string // everything after -p PORT, fixed for the server's life

	mu   sync.Mutex
	proc *testproc.Process // nil while killed; guarded by mu
}

// Start starts a fresh memcached on a free 127.0.0.1 port (UDP off, the
// server's default 64 MiB of memory and 1 MiB largest item), waits until
// it answers, and kills it in t.Cleanup.
//
// args are extra memcached arguments such as "-I", "4m". They come after
// the harness's own, so they override them.
//
// If memcached is not on PATH, Start fails the test with a message that
// says how to install it. If the server does not come up, the message
// carries the tail of its output.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	RequireMemcached(t)
	s := &Server{t: t, dir: t.TempDir()}
	s.args = append(baseArgs(), args...)

	var lastErr error
	for range bindAttempts {
		port, err := testproc.FreePort()
		if err != nil {
			t.Fatalf("memcachedtest: %v", err)
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
	t.Fatalf("memcachedtest: start memcached: %v", lastErr)
	return nil
}

// baseArgs are the arguments every server gets: loopback TCP only.
func baseArgs() []string {
	args := []string{"-l", "127.0.0.1", "-U", "0"}
	if os.Geteuid() == 0 {
		// memcached refuses to run as root unless told which user to be.
		args = append(args, "-u", "root")
	}
	return args
}

// launch starts memcached on s.port and waits until it answers. On failure
// the process is gone and the error carries the tail of its output.
func (s *Server) launch() error {
	logPath := filepath.Join(s.dir, logName)
	logStart := testproc.FileSize(logPath)
	args := append([]string{"-p", strconv.Itoa(s.port)}, s.args...)
	p, err := testproc.Start(s.dir, logPath, "memcached", args...)
	if err != nil {
		return err
	}

	if err := waitReady(p, s.Addr()); err != nil {
		_ = p.Kill()
		tail := testproc.TailSince(logPath, logStart)
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("%w on port %d: %v\n--- %s ---\n%s", testproc.ErrPortInUse, s.port, err, logName, tail)
		}
		return fmt.Errorf("port %d: %v\n--- %s ---\n%s", s.port, err, logName, tail)
	}

	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady polls until the process answers "stats" with its own pid, so a
// different server that grabbed the port cannot be mistaken for ours.
func waitReady(p *testproc.Process, addr string) error {
	want := strconv.Itoa(p.Pid())
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("memcached exited during startup: %v", p.State())
		default:
		}
		stats, err := rawStats(addr, 500*time.Millisecond)
		if err == nil {
			if stats["pid"] == want {
				return nil
			}
			err = fmt.Errorf("another process (pid %s) answers on this port", stats["pid"])
		}
		lastErr = err
		select {
		case <-p.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("memcached not ready after %v: %v", readyTimeout, lastErr)
}

// rawStats runs "stats" on a fresh connection and returns its STAT lines as
// a map.
func rawStats(addr string, timeout time.Duration) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	stats := map[string]string{}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return stats, nil
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "STAT "), " ")
		if !ok || !strings.HasPrefix(line, "STAT ") {
			return nil, fmt.Errorf("unexpected reply to stats: %q", line)
		}
		stats[name] = value
	}
}

// stop is the Cleanup function: kill whatever runs and release the log file.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.Kill(); err != nil {
		s.t.Errorf("memcachedtest: %v", err)
	}
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the server's TCP port. It stays the same across
// [Server.Restart].
func (s *Server) Port() int { return s.port }

// Dir returns the server's working directory (its output is in
// memcached.log there).
func (s *Server) Dir() string { return s.dir }

// Pid returns the process id of the running memcached, or 0 after
// [Server.Kill].
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid()
}

// Client returns a new gomemcache client for the server with a 10-second
// timeout, for a test to read and write the server's items behind a
// layer's back. Its idle connections are closed in t.Cleanup, which runs
// before the server is stopped.
func (s *Server) Client(t testing.TB) *memcache.Client {
	t.Helper()
	c := memcache.New(s.Addr())
	c.Timeout = 10 * time.Second
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stats returns the server's general statistics ("stats": curr_items,
// cmd_get, get_hits, ...). It fails the test if the server does not answer
// within 10 seconds.
func (s *Server) Stats(t testing.TB) map[string]string {
	t.Helper()
	stats, err := rawStats(s.Addr(), 10*time.Second)
	if err != nil {
		t.Fatalf("memcachedtest: stats on %s: %v", s.Addr(), err)
	}
	return stats
}

// Pause stops the process with SIGSTOP and returns once every one of its
// threads has stopped. Connections stay open and commands are accepted by
// the kernel but get no reply until [Server.Resume].
func (s *Server) Pause() {
	s.t.Helper()
	s.signal("Pause", (*testproc.Process).Pause)
}

// Resume continues a paused process with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal("Resume", func(p *testproc.Process) error { return p.Signal(syscall.SIGCONT) })
}

// signal applies send to the running process.
func (s *Server) signal(op string, send func(*testproc.Process) error) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatalf("memcachedtest: %s on a server that is not running (killed?)", op)
		return
	}
	if err := send(s.proc); err != nil {
		s.t.Fatalf("memcachedtest: %s: %v", op, err)
	}
}

// Kill kills the process with SIGKILL and waits until it has exited, so
// that its port is closed when Kill returns. Killing a killed server does
// nothing. The cache's contents are lost.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	if err := p.Kill(); err != nil {
		s.t.Fatalf("memcachedtest: Kill: %v", err)
	}
}

// Restart starts the server again on the same port and with the same
// arguments, killing it first if it is running, and waits until it
// answers. The new process starts with an empty cache.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := testproc.Relaunch(s.launch); err != nil {
		s.t.Fatalf("memcachedtest: Restart: %v", err)
	}
}
