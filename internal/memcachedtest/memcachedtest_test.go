package memcachedtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/goleak"

	"github.com/layercache/layercache/internal/testproc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fatalRecorder is a testing.TB whose Fatal ends the calling goroutine and
// records the message instead of failing the real test, so the harness's
// own failure messages can be checked. Everything else goes to the real
// test.
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

// quickClient gives up on an operation after timeout.
func quickClient(addr string, timeout time.Duration) *memcache.Client {
	c := memcache.New(addr)
	c.Timeout = timeout
	return c
}

func TestStart_ServesOnLoopback(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if want := fmt.Sprintf("127.0.0.1:%d", s.Port()); s.Addr() != want {
		t.Fatalf("Addr = %q, want %q", s.Addr(), want)
	}
	c := s.Client(t)
	if err := c.Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get("k")
	if err != nil || string(it.Value) != "v" {
		t.Fatalf("Get = %v, %v", it, err)
	}
	st := s.Stats(t)
	if st["pid"] != fmt.Sprint(s.Pid()) || st["curr_items"] != "1" {
		t.Fatalf("stats pid %s (want %d), curr_items %s (want 1)", st["pid"], s.Pid(), st["curr_items"])
	}
}

func TestStart_ServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Port() == b.Port() {
		t.Fatalf("two servers on port %d", a.Port())
	}
	if err := a.Client(t).Set(&memcache.Item{Key: "k", Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client(t).Get("k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("second server sees the first server's key: %v", err)
	}
}

func TestStart_ExtraArgsOverrideDefaults(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	small, large := Start(t), Start(t, "-I", "2m")
	if err := small.Client(t).Set(&memcache.Item{Key: "k", Value: big}); err == nil {
		t.Fatal("a server with the default 1 MiB item limit stored more")
	}
	if err := large.Client(t).Set(&memcache.Item{Key: "k", Value: big}); err != nil {
		t.Fatalf("a server started with -I 2m refused a 1 MiB item: %v", err)
	}
}

func TestStart_FailureReportsMemcachedOutput(t *testing.T) {
	t.Parallel()
	msg := fatalOf(t, func(tb testing.TB) { Start(tb, "--no-such-option") })
	if msg == "" {
		t.Fatal("Start with a bad option did not fail")
	}
	if !strings.Contains(msg, "no-such-option") {
		t.Fatalf("failure message lacks memcached's complaint:\n%s", msg)
	}
}

func TestLaunch_TakenPortIsReportedForRetry(t *testing.T) {
	t.Parallel()
	RequireMemcached(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{t: t, dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port, args: baseArgs()}
	if err := s.launch(); !errors.Is(err, testproc.ErrPortInUse) {
		t.Fatalf("launch on a taken port: %v, want ErrPortInUse", err)
	}
	if s.Pid() != 0 {
		t.Fatalf("a failed launch left pid %d running", s.Pid())
	}
}

func TestRequireMemcached_MissingBinaryExplainsInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for name, f := range map[string]func(testing.TB){
		"RequireMemcached": func(tb testing.TB) { RequireMemcached(tb) },
		"Start":            func(tb testing.TB) { Start(tb) },
	} {
		msg := fatalOf(t, f)
		if !strings.Contains(msg, "apt-get install memcached") || !strings.Contains(msg, "scripts/test.sh") {
			t.Errorf("%s: message does not say how to install: %q", name, msg)
		}
	}
}

func TestPause_OperationsTimeOutUntilResume(t *testing.T) {
	t.Parallel()
	s := Start(t)
	c := quickClient(s.Addr(), 200*time.Millisecond)
	defer c.Close()
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	err := c.Ping()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Ping on a paused server = %v; want a timeout", err)
	}
	s.Resume()
	if err := c.Ping(); err != nil {
		t.Fatalf("Ping after Resume: %v", err)
	}
}

func TestPause_CleanupKillsPausedServer(t *testing.T) {
	var addr string
	t.Run("paused", func(t *testing.T) {
		s := Start(t)
		addr = s.Addr()
		s.Pause()
	})
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the paused server still accepts connections after its test ended")
	}
}

func TestKill_RestartOnSamePortWithEmptyCache(t *testing.T) {
	t.Parallel()
	s := Start(t)
	port, pid := s.Port(), s.Pid()
	if err := s.Client(t).Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Pid() != 0 {
		t.Fatalf("Pid after Kill = %d", s.Pid())
	}
	c := quickClient(s.Addr(), time.Second)
	defer c.Close()
	if err := c.Ping(); err == nil {
		t.Fatal("a killed server answers")
	}
	s.Kill() // killing a killed server does nothing
	s.Restart()
	if s.Port() != port || s.Pid() == 0 || s.Pid() == pid {
		t.Fatalf("after Restart: port %d (was %d), pid %d (was %d)", s.Port(), port, s.Pid(), pid)
	}
	if _, err := c.Get("k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get after Restart = %v; want an empty cache", err)
	}
}
