package httpcache_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	httpcache "github.com/layercache/layercache/contrib/http"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// instance is one service instance: an in-process layer over the shared
// Redis, and the bus that tells it about the other instances' writes.
func instance(t *testing.T, srv *redistest.Server) *layercache.Cache {
	t.Helper()
	client := srv.Client(t)
	l1, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := redis.New(redis.Options{Client: client, Prefix: "svc:"})
	if err != nil {
		t.Fatal(err)
	}
	bus, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1, l2}, layercache.WithBus(bus), layercache.WithNamespace("svc"),
		layercache.WithStrictWrites())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestServe_TagInvalidationOnOneInstanceIsAMissOnAnother(t *testing.T) {
	srv := redistest.Start(t)
	a, b := instance(t, srv), instance(t, srv)
	var version atomic.Int64
	var runs [2]atomic.Int64
	route := func(i int, c *layercache.Cache) http.Handler {
		return httpcache.New(c, httpcache.Options{TTL: time.Minute, Tags: []string{"catalog"}})(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs[i].Add(1)
				w.Header().Set("Content-Type", "text/plain")
				_, _ = fmt.Fprintf(w, "catalog v%d", version.Load())
			}))
	}
	onA, onB := route(0, a), route(1, b)

	wantXCache(t, do(onA, "GET", "/catalog"), "MISS")
	// b finds a's response in Redis, then in its own memory.
	for range 2 {
		w := do(onB, "GET", "/catalog")
		wantXCache(t, w, "HIT")
		if w.Body.String() != "catalog v0" || w.Header().Get("Content-Type") != "text/plain" {
			t.Fatalf("b: %q %v", w.Body.String(), w.Header())
		}
	}
	if runs[1].Load() != 0 {
		t.Fatal("b ran the handler although a had stored the response")
	}

	version.Store(1)
	received := b.Stats().BusReceived
	if err := a.InvalidateTags(context.Background(), "catalog"); err != nil {
		t.Fatal(err)
	}
	if !within(10*time.Second, func() bool { return b.Stats().BusReceived > received }) {
		t.Fatal("b never heard of the invalidation")
	}
	w := do(onB, "GET", "/catalog")
	wantXCache(t, w, "MISS")
	if w.Body.String() != "catalog v1" {
		t.Fatalf("b after invalidation: %q", w.Body.String())
	}
	// b's new response is now what a finds.
	w = do(onA, "GET", "/catalog")
	wantXCache(t, w, "HIT")
	if w.Body.String() != "catalog v1" {
		t.Fatalf("a after b reloaded: %q", w.Body.String())
	}
}

func TestServe_VariantsAreSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	a, b := instance(t, srv), instance(t, srv)
	var runs atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		w.Header().Set("Vary", "Accept-Encoding")
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write([]byte("GZ"))
			return
		}
		_, _ = w.Write([]byte("plain"))
	})
	o := httpcache.Options{TTL: time.Minute}
	onA, onB := httpcache.New(a, o)(h), httpcache.New(b, o)(h)
	do(onA, "GET", "/v", "Accept-Encoding", "gzip")
	w := do(onB, "GET", "/v")
	if w.Body.String() != "plain" || w.Header().Get("Content-Encoding") != "" {
		t.Fatalf("plain client on b got %q (%v)", w.Body.String(), w.Header())
	}
	wantXCache(t, w, "MISS")
	w = do(onB, "GET", "/v", "Accept-Encoding", "gzip")
	wantXCache(t, w, "HIT")
	if w.Body.String() != "GZ" {
		t.Fatalf("gzip client on b got %q", w.Body.String())
	}
	if runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want once per variant", runs.Load())
	}
}
