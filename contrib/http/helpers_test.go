package httpcache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

// memoryCache is a cache of one in-process layer, closed when the test ends.
func memoryCache(t testing.TB) *layercache.Cache {
	t.Helper()
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// counted wraps a handler and counts its runs.
type counted struct {
	runs atomic.Int64
	h    http.HandlerFunc
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.runs.Add(1)
	c.h(w, r)
}

// do sends one request to h and returns the recorded response.
func do(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func body(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	b, err := io.ReadAll(w.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantXCache(t testing.TB, w *httptest.ResponseRecorder, want string) {
	t.Helper()
	if got := w.Header().Get("X-Cache"); got != want {
		t.Fatalf("X-Cache = %q, want %q (status %d, body %q)", got, want, w.Code, w.Body.String())
	}
}

// within polls cond for up to d; it is how tests wait for something that
// happens on another goroutine, never a claim about speed.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}

// gate holds handlers until it is opened.
type gate struct {
	once    sync.Once
	ch      chan struct{}
	entered chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{}), entered: make(chan struct{}, 1000)} }

func (g *gate) wait() {
	g.entered <- struct{}{}
	<-g.ch
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// waitEntered waits until n handlers are held at the gate.
func (g *gate) waitEntered(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("handler never reached the gate")
		}
	}
}
