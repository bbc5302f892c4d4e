package memcached_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memcached"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/internal/memcachedtest"
	"github.com/layercache/layercache/internal/redistest"
)

// A memory L1 over a memcached L2, built with layercache.New as a program
// would, and exercised through the cache's own API.

// stack returns a cache of a fresh memory layer over a memcached layer on
// addrs, closed in t.Cleanup.
func stack(t *testing.T, mo memcached.Options, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	l1, err := memory.New(memory.Options{MaxSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if mo.Prefix == "" {
		mo.Prefix = "test:"
	}
	if mo.Timeout == 0 {
		// Not what these tests are about: room for a busy machine.
		mo.Timeout = 2 * time.Second
	}
	l2, err := memcached.New(mo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1, l2}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// loadOnce returns a loader that fails the test when it runs twice.
func loadOnce[V any](t *testing.T, v V) func(context.Context) (V, error) {
	var calls atomic.Int32
	return func(context.Context) (V, error) {
		if n := calls.Add(1); n > 1 {
			t.Errorf("loader for %v ran %d times", v, n)
		}
		return v, nil
	}
}

func mustNot[V any](t *testing.T) func(context.Context) (V, error) {
	return func(context.Context) (V, error) {
		var zero V
		t.Error("the loader ran; the value should have come from a layer")
		return zero, errors.New("must not load")
	}
}

type user struct {
	ID      int64
	Name    string
	Roles   []string
	Created time.Time
}

func TestStack_ReadThroughBackfillsL1(t *testing.T) {
	s := memcachedtest.Start(t)
	mo := memcached.Options{Addrs: []string{s.Addr()}}
	a := stack(t, mo, layercache.WithStrictWrites())
	b := stack(t, mo)
	ctx := context.Background()
	want := user{ID: math.MaxInt64, Name: "Ada", Roles: []string{}, Created: time.Date(2024, 5, 1, 12, 0, 0, 7, time.FixedZone("X", 3600))}

	got, err := layercache.Get(ctx, a, "user:1", loadOnce(t, want), layercache.WithTTL(time.Minute))
	if err != nil || got.ID != want.ID {
		t.Fatalf("first Get = %+v, %v", got, err)
	}
	if _, err := s.Client(t).Get("test:user:1"); err != nil {
		t.Fatalf("the loaded value is not in memcached: %v", err)
	}
	// b has an empty L1: the first read is an L2 hit, the second an L1 hit.
	for range 2 {
		got, err := layercache.Get(ctx, b, "user:1", mustNot[user](t))
		if err != nil || got.ID != want.ID || got.Name != want.Name || got.Roles == nil || len(got.Roles) != 0 ||
			!got.Created.Equal(want.Created) || zoneOffset(got.Created) != 3600 {
			t.Fatalf("Get on b = %+v, %v; want %+v", got, err, want)
		}
	}
	st := b.Stats()
	if st.Layers[1].Name != "memcached" || st.Layers[1].Hits != 1 || st.Layers[0].Hits != 1 || st.Loads != 0 {
		t.Fatalf("b: L1 hits %d, L2 (%s) hits %d, loads %d; want 1, 1, 0", st.Layers[0].Hits, st.Layers[1].Name, st.Layers[1].Hits, st.Loads)
	}
}

func zoneOffset(t time.Time) int {
	_, off := t.Zone()
	return off
}

func TestStack_ConcurrentMissesLoadOnce(t *testing.T) {
	s := memcachedtest.Start(t)
	c := stack(t, memcached.Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()
	var loads atomic.Int32
	release := make(chan struct{})
	loader := func(context.Context) (string, error) {
		loads.Add(1)
		<-release
		return "v", nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			v, err := layercache.Get(ctx, c, "hot", loader)
			if err == nil && v != "v" {
				err = fmt.Errorf("got %q", v)
			}
			errs <- err
		})
	}
	// Let every caller reach the flight before the load ends.
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Deduplicated < 19 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("20 concurrent misses ran the loader %d times", n)
	}
}

func TestStack_DeleteRemovesFromEveryLayer(t *testing.T) {
	s := memcachedtest.Start(t)
	c := stack(t, memcached.Options{Addrs: []string{s.Addr()}}, layercache.WithStrictWrites())
	ctx := context.Background()
	if err := layercache.Set(ctx, c, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(t).Get("test:k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("memcached still holds the deleted key: %v", err)
	}
	v, err := layercache.Get(ctx, c, "k", loadOnce(t, "v2"))
	if err != nil || v != "v2" {
		t.Fatalf("Get after Delete = %q, %v; want the loader's new value", v, err)
	}
}

func TestStack_InvalidateTagsReachesMemcached(t *testing.T) {
	s := memcachedtest.Start(t)
	mo := memcached.Options{Addrs: []string{s.Addr()}}
	a := stack(t, mo, layercache.WithStrictWrites())
	b := stack(t, mo)
	ctx := context.Background()
	if err := layercache.Set(ctx, a, "u1", "one", layercache.WithTags("users")); err != nil {
		t.Fatal(err)
	}
	if err := layercache.Set(ctx, a, "o1", "org", layercache.WithTags("orgs")); err != nil {
		t.Fatal(err)
	}
	if err := a.InvalidateTags(ctx, "users"); err != nil {
		t.Fatalf("InvalidateTags: %v", err)
	}
	// b never held u1 in its L1: only memcached could serve it.
	if v, ok, err := layercache.Lookup[string](ctx, b, "u1"); ok || err != nil {
		t.Fatalf("Lookup of an invalidated key on another instance = %q, %v, %v; want a miss", v, ok, err)
	}
	if v, ok, err := layercache.Lookup[string](ctx, b, "o1"); !ok || err != nil || v != "org" {
		t.Fatalf("Lookup of a key with another tag = %q, %v, %v", v, ok, err)
	}
}

func TestStack_LargeValueRoundTrips(t *testing.T) {
	s := memcachedtest.Start(t) // memcached's default 1 MiB item limit
	mo := memcached.Options{Addrs: []string{s.Addr()}, CompressAbove: 1024}
	a := stack(t, mo, layercache.WithStrictWrites())
	b := stack(t, mo)
	ctx := context.Background()
	want := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16) // 4 MiB, compressible
	if err := layercache.Set(ctx, a, "big", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := layercache.Lookup[[]byte](ctx, b, "big")
	if err != nil || !ok || !bytes.Equal(got, want) {
		t.Fatalf("Lookup of 4 MiB through memcached: ok=%v err=%v len=%d", ok, err, len(got))
	}
}

func TestStack_CorruptValueIsMissAndCountedError(t *testing.T) {
	s := memcachedtest.Start(t)
	c := stack(t, memcached.Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()
	for i, foreign := range []string{"hello", "LC\x01garbage", "LT\x01\x01", ""} {
		key := fmt.Sprint("foreign", i)
		if err := s.Client(t).Set(&memcache.Item{Key: "test:" + key, Value: []byte(foreign)}); err != nil {
			t.Fatal(err)
		}
		if v, err := layercache.Get(ctx, c, key, loadOnce(t, "loaded")); v != "loaded" || err != nil {
			t.Fatalf("%q: %q, %v", foreign, v, err)
		}
		if got := c.Stats().Layers[1].Errors; got != uint64(i+1) {
			t.Fatalf("after %d foreign values, %d errors counted", i+1, got)
		}
	}
	if st := c.Stats().Layers[1]; st.Breaker != layercache.BreakerClosed {
		t.Fatal("corrupt values opened the breaker: the server is healthy")
	}
}

// outage runs the degradation scenario against a memcached that goes away
// by stop and comes back by start.
func outage(t *testing.T, stop, start func(*memcachedtest.Server)) {
	s := memcachedtest.Start(t)
	proxy := redistest.NewProxy(t, s.Addr())
	const retryAfter = 200 * time.Millisecond
	c := stack(t, memcached.Options{Addrs: []string{proxy.Addr()}, Timeout: 150 * time.Millisecond},
		layercache.WithDegradation(layercache.Degradation{FailureThreshold: 2, RetryAfter: retryAfter}))
	ctx := context.Background()
	if v, err := layercache.Get(ctx, c, "warm", loadOnce(t, "w")); v != "w" || err != nil {
		t.Fatal(v, err)
	}

	stop(s)
	// Warm keys are served from L1 as if nothing happened.
	for range 50 {
		if v, err := layercache.Get(ctx, c, "warm", mustNot[string](t)); v != "w" || err != nil {
			t.Fatalf("warm hit during the outage: %q, %v", v, err)
		}
	}
	// Cold misses get the loader's value, with no error; their failures
	// open the breaker.
	for i := 0; c.Stats().Layers[1].Breaker != layercache.BreakerOpen; i++ {
		if i == 10 {
			t.Fatalf("breaker still %v after 10 cold misses", c.Stats().Layers[1].Breaker)
		}
		key := fmt.Sprint("cold", i)
		if v, err := layercache.Get(ctx, c, key, loadOnce(t, key)); v != key || err != nil {
			t.Fatalf("cold miss during the outage: %q, %v", v, err)
		}
	}
	if st := c.Stats().Layers[1]; st.Errors == 0 {
		t.Fatal("the outage counted no errors")
	}
	// With the breaker open memcached is not touched at all.
	proxy.Reset()
	for i := range 20 {
		key := fmt.Sprint("skip", i)
		if v, err := layercache.Get(ctx, c, key, loadOnce(t, key)); v != key || err != nil {
			t.Fatalf("cold miss with the breaker open: %q, %v", v, err)
		}
	}
	if n, w := proxy.Accepted(), proxy.UpstreamWrites(); n != 0 || w != 0 {
		t.Fatalf("with the breaker open, %d connections and %d writes reached memcached", n, w)
	}
	if st := c.Stats().Layers[1]; st.Skipped == 0 {
		t.Fatal("no operation counted as skipped while the breaker was open")
	}

	start(s)
	// After RetryAfter a probe goes through, the breaker closes and L2 is
	// used again.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; c.Stats().Layers[1].Breaker != layercache.BreakerClosed; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %v after memcached came back", c.Stats().Layers[1].Breaker)
		}
		key := fmt.Sprint("back", i)
		_, _ = layercache.Get(ctx, c, key, func(context.Context) (string, error) { return key, nil })
		time.Sleep(5 * time.Millisecond)
	}
	if err := layercache.Set(ctx, c, "after", "x"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		_, err := s.Client(t).Get("test:after")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("L2 not written after recovery: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStack_KilledMemcachedDegradesToL1AndRecovers(t *testing.T) {
	outage(t, (*memcachedtest.Server).Kill, (*memcachedtest.Server).Restart)
}

func TestStack_StalledMemcachedDegradesToL1AndRecovers(t *testing.T) {
	outage(t, (*memcachedtest.Server).Pause, (*memcachedtest.Server).Resume)
}

func TestStack_DownAtStartIsNotAnError(t *testing.T) {
	// New contacts nothing: the first operations fail over to the loader.
	s := memcachedtest.Start(t)
	addr := s.Addr()
	s.Kill()
	c := stack(t, memcached.Options{Addrs: []string{addr}})
	v, err := layercache.Get(context.Background(), c, "k", loadOnce(t, "v"))
	if v != "v" || err != nil {
		t.Fatalf("Get with memcached down = %q, %v", v, err)
	}
}

func TestOpen_ExampleConfig(t *testing.T) {
	s := memcachedtest.Start(t)
	t.Setenv("LAYERCACHE_LAYERS__1__ADDRS", s.Addr())
	c, err := layercache.Open("../../examples/configs/memcached.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if v, err := layercache.Get(ctx, c, "k", loadOnce(t, "v")); v != "v" || err != nil {
		t.Fatal(v, err)
	}
	if err := c.Close(); err != nil { // drains the write to memcached
		t.Fatal(err)
	}
	if _, err := s.Client(t).Get("myapp:k"); err != nil {
		t.Fatalf("the value is not in memcached under the namespace's prefix: %v", err)
	}
	if st := c.Stats(); len(st.Layers) != 2 || st.Layers[1].Name != "memcached" {
		t.Fatalf("stack %+v", st.Layers)
	}
}

func TestOpen_UnreachableMemcachedIsNamed(t *testing.T) {
	s := memcachedtest.Start(t)
	addr := s.Addr()
	s.Kill()
	t.Setenv("LAYERCACHE_LAYERS__1__ADDRS", addr)
	_, err := layercache.Open("../../examples/configs/memcached.yaml")
	if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "start_degraded") {
		t.Fatalf("Open with memcached down = %v; want an error naming the server and the way out", err)
	}
}
