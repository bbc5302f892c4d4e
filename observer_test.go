package layercache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
)

// recorder is an Observer that writes down what it is told.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

type depthKey struct{}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Begin(ctx context.Context, op layercache.Operation) context.Context {
	r.add("begin %s %s", op.Kind, op.Key)
	depth, _ := ctx.Value(depthKey{}).(int)
	return context.WithValue(ctx, depthKey{}, depth+1)
}

func (r *recorder) Finish(ctx context.Context, op layercache.Operation, out layercache.Outcome) {
	depth, _ := ctx.Value(depthKey{}).(int)
	r.add("finish %s %s depth=%d result=%s layer=%s err=%v", op.Kind, op.Key, depth, out.Result, out.Layer, out.Err != nil)
}

func (r *recorder) Event(ctx context.Context, e layercache.Event) {
	if e.Kind == layercache.EventLayerOp {
		r.add("event %s %s/%s err=%v", e.Kind, e.Layer, e.Op, e.Err != nil)
		return
	}
	r.add("event %s %s", e.Kind, e.Layer)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

func TestObserver_SeesWhatHappens(t *testing.T) {
	rec := &recorder{}
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, layercache.WithObserver(rec), layercache.WithStrictWrites())
	ctx := context.Background()
	load := func(ctx context.Context) (string, error) {
		if d, _ := ctx.Value(depthKey{}).(int); d != 2 {
			return "", fmt.Errorf("loader context at depth %d, want the load's own (2)", d)
		}
		return "v", nil
	}

	expect := func(step string, want ...string) {
		t.Helper()
		got := rec.take()
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: missing %q in\n%q", step, w, got)
			}
		}
	}

	if _, err := layercache.Get(ctx, c, "k", load); err != nil {
		t.Fatal(err)
	}
	expect("miss with load",
		"begin get k", "begin load k",
		"finish load k depth=2 result=loaded layer= err=false",
		"event layer_op bytes/get err=false",
		"finish get k depth=1 result=loaded layer= err=false")

	if _, err := layercache.Get(ctx, c, "k", load); err != nil {
		t.Fatal(err)
	}
	expect("L1 hit", "begin get k", "finish get k depth=1 result=hit layer=memory err=false")

	must(t, c.Delete(ctx, "k"))
	expect("delete", "begin delete ", "event layer_op bytes/delete err=false", "finish delete  depth=1 result=none layer= err=false")

	l2.failing.Store(true)
	if _, err := layercache.Get(ctx, c, "cold", load); err != nil {
		t.Fatal(err)
	}
	expect("layer error", "event layer_op bytes/get err=true", "finish get cold depth=1 result=loaded layer= err=false")
	l2.failing.Store(false)

	if _, err := layercache.Get(ctx, c, "absent", func(context.Context) (string, error) { return "", layercache.ErrNotFound }); !errors.Is(err, layercache.ErrNotFound) {
		t.Fatal(err)
	}
	expect("not found", "finish get absent depth=1 result=not_found layer= err=false")
}

func TestObserver_L2HitBackfillAndStale(t *testing.T) {
	rec := &recorder{}
	l1, l2 := newMemory(t, memoryOpts), newByteLayer()
	c := newCache(t, []driver.Layer{l1, l2}, layercache.WithObserver(rec))
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(20 * time.Millisecond), layercache.WithStaleIfError(time.Hour)}
	must(t, layercache.Set(ctx, c, "k", "v", opts...))
	must(t, l1.Delete(ctx, "k"))
	rec.take()

	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "", errors.New("no") }, opts...); err != nil {
		t.Fatal(err)
	}
	got := rec.take()
	for _, w := range []string{"event backfill memory", "finish get k depth=1 result=hit layer=bytes err=false"} {
		if !slices.Contains(got, w) {
			t.Errorf("L2 hit: missing %q in %q", w, got)
		}
	}

	time.Sleep(30 * time.Millisecond)
	if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "", errors.New("db down") }, opts...); v != "v" || err != nil {
		t.Fatal(v, err)
	}
	got = rec.take()
	for _, w := range []string{"event stale_served memory", "finish get k depth=1 result=stale layer=memory err=false"} {
		if !slices.Contains(got, w) {
			t.Errorf("stale: missing %q in %q", w, got)
		}
	}
}

func TestStatsHandler_ServesJSON(t *testing.T) {
	c, _ := memCache(t)
	_, _ = layercache.Get(context.Background(), c, "k", func(context.Context) (int, error) { return 1, nil })
	_, _ = layercache.Get(context.Background(), c, "k", func(context.Context) (int, error) { return 1, nil })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/debug/cache", nil)
	req.RemoteAddr = "127.0.0.1:1234" // served to loopback callers without an authorization function
	layercache.StatsHandler(c).ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var s struct {
		Loads  int
		Layers []struct {
			Name    string
			Hits    int
			Breaker string
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err, rec.Body.String())
	}
	if s.Loads != 1 || len(s.Layers) != 1 || s.Layers[0].Name != "memory" || s.Layers[0].Hits != 1 || s.Layers[0].Breaker != "closed" {
		t.Fatalf("stats JSON %s", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("POST", "/debug/cache", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	layercache.StatsHandler(c).ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}
