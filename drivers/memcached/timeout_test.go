package memcached

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

// The cache adds no deadline to a driver.Timeouter, so the layer must bound
// its operations itself. These tests tell the mechanisms apart by the error
// they produce; none depends on how long anything took.

func TestTimeout_StalledServerIsBoundedBySocketDeadline(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, Timeout: 150 * time.Millisecond})
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	defer s.Resume()
	for name, op := range map[string]func() error{
		"Get":     func() error { _, err := l.Get(ctx, "k"); return err },
		"GetMany": func() error { _, err := l.GetMany(ctx, []string{"a", "b"}); return err },
		"Set":     func() error { return l.Set(ctx, "k", &driver.Entry{Payload: []byte("v")}) },
		"Delete":  func() error { return l.Delete(ctx, "k") },
	} {
		err := op()
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s on a stalled server = %v; want a socket timeout", name, err)
		}
	}
}

func TestTimeout_ShorterContextDeadlineEndsTheWait(t *testing.T) {
	s := startServer(t)
	// A socket deadline far longer than the context's: only the context
	// can end the wait before the test's own timeout.
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, Timeout: time.Minute})
	if err := l.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	// Resumed before the Cleanups, so that the abandoned exchange ends and
	// its goroutine returns before goleak looks.
	defer s.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := l.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a stalled server under a short context deadline = %v; want context.DeadlineExceeded", err)
	}
}

func TestTimeout_BlackHoledNetwork(t *testing.T) {
	s := startServer(t)
	proxy := redistest.NewProxy(t, s.Addr())
	l := newLayerT(t, Options{Addrs: []string{proxy.Addr()}, Timeout: 150 * time.Millisecond})
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.SetBlackHole(true)
	_, err := l.Get(ctx, "k")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Get through a black hole = %v; want a socket timeout", err)
	}
	// The connection that timed out is thrown away: once the network is
	// back, the next operation works.
	proxy.SetBlackHole(false)
	if _, err := l.Get(ctx, "k"); err != nil {
		t.Fatalf("Get after the network came back: %v", err)
	}
}

func TestTimeout_DoneContextTouchesNoServer(t *testing.T) {
	s := startServer(t)
	proxy := redistest.NewProxy(t, s.Addr())
	l := newLayerT(t, Options{Addrs: []string{proxy.Addr()}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get under a cancelled context = %v", err)
	}
	if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("v")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Set under a cancelled context = %v", err)
	}
	if n := proxy.Accepted(); n != 0 {
		t.Errorf("%d connections made under a cancelled context", n)
	}
}
