package redis

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/layercache/layercache/internal/redistest"
)

// The cache adds no deadline to a driver.Timeouter, so the layer must bound
// its operations itself whatever client it is given. Both tests give the
// operation a context without a deadline and tell the two mechanisms apart
// by the error they produce; neither depends on how long anything took.

func TestTimeout_UserClientIsBoundedByContextDeadline(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client(t) // go-redis's default socket timeouts: seconds
	l, err := New(Options{Client: client, Timeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if l.socketTimed {
		t.Fatal("a client with second-long socket timeouts taken as bounded by 150ms")
	}
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	_, err = l.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a paused server = %v; want the layer's own deadline to end it", err)
	}
}

func TestTimeout_ConfiguredClientIsBoundedBySocketDeadlines(t *testing.T) {
	srv := redistest.Start(t)
	l, err := openLayer(t, "url: "+srv.URL()+"\ntimeout: 150ms\nprefix: 't:'\n")
	if err != nil {
		t.Fatal(err)
	}
	if !l.socketTimed {
		t.Fatal("a client built from configuration should carry the layer's timeout in its sockets")
	}
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	_, err = l.Get(ctx, "k")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Get on a paused server = %v; want a socket timeout", err)
	}
}
