package httpcache_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	httpcache "github.com/layercache/layercache/contrib/http"
)

// A handler that flushes streams: its client gets each part as it is
// flushed, the response is not stored, and the requests that were waiting
// for it run the handler themselves instead of waiting for the stream to end.
func TestServe_StreamingHandlerPassesThroughAndReleasesWaiters(t *testing.T) {
	c := memoryCache(t)
	start, end := newGate(), newGate()
	var calls atomic.Int64
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		first := calls.Add(1) == 1
		if first {
			start.wait()
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "part one\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		if first {
			end.wait()
		}
		_, _ = io.WriteString(w, "part two\n")
	}}
	srv := httptest.NewServer(httpcache.New(c, httpcache.Options{TTL: time.Minute})(h))
	defer srv.Close()
	defer end.open()

	type result struct {
		resp *http.Response
		err  error
	}
	get := func() <-chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := srv.Client().Get(srv.URL + "/events")
			ch <- result{resp, err}
		}()
		return ch
	}
	receive := func(ch <-chan result) *http.Response {
		t.Helper()
		select {
		case res := <-ch:
			if res.err != nil {
				t.Fatal(res.err)
			}
			return res.resp
		case <-time.After(10 * time.Second):
			t.Fatal("no response: a request is stuck behind the stream")
			return nil
		}
	}

	streaming := get()
	start.waitEntered(t, 1)
	waiting := get()
	if !within(10*time.Second, func() bool { return c.Stats().Deduplicated >= 1 }) {
		t.Fatal("second request never joined the load")
	}
	start.open()

	a := receive(streaming)
	defer a.Body.Close()
	if a.Header.Get("X-Cache") != "MISS" || a.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream headers %v", a.Header)
	}
	line, err := bufio.NewReader(a.Body).ReadString('\n')
	if err != nil || line != "part one\n" {
		t.Fatalf("first part %q, %v", line, err)
	}
	end.waitEntered(t, 1) // the stream's handler is still running

	// The waiting request and a new one complete while the stream goes on.
	for _, ch := range []<-chan result{waiting, get()} {
		b := receive(ch)
		all, _ := io.ReadAll(b.Body)
		b.Body.Close()
		if string(all) != "part one\npart two\n" || b.Header.Get("X-Cache") != "MISS" {
			t.Fatalf("request during the stream: %s %q", b.Header.Get("X-Cache"), all)
		}
	}
	end.open()
	rest, _ := io.ReadAll(a.Body)
	if string(rest) != "part two\n" {
		t.Fatalf("rest of the stream %q", rest)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("handler ran %d times, want 3", got)
	}
	// Nothing was stored.
	b := receive(get())
	b.Body.Close()
	if b.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("after the stream: X-Cache %s", b.Header.Get("X-Cache"))
	}
}
