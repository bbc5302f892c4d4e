package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
)

func TestDegradation_BreakerOpensSkipsAndRecovers(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithStrictWrites(),
		layercache.WithDegradation(layercache.Degradation{FailureThreshold: 3, RetryAfter: 50 * time.Millisecond}))
	ctx := context.Background()
	l2.failing.Store(true)

	load := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return v, nil }
	}
	// Cold misses still answer, from the loader.
	for i, key := range []string{"a", "b"} {
		if v, err := layercache.Get(ctx, c, key, load(key)); v != key || err != nil {
			t.Fatalf("miss %d with L2 down: %q, %v", i, v, err)
		}
	}
	// Two misses = 2 failed reads + 2 failed writes: the third failure opens the breaker.
	st := c.Stats().Layers[1]
	if st.Breaker != layercache.BreakerOpen || st.BreakerOpened != 1 {
		t.Fatalf("breaker %v after %d errors, want open", st.Breaker, st.Errors)
	}
	callsWhenOpened := l2.calls.Load()
	for _, key := range []string{"c", "d", "e"} {
		if v, err := layercache.Get(ctx, c, key, load(key)); v != key || err != nil {
			t.Fatalf("miss with breaker open: %q, %v", v, err)
		}
	}
	if n := l2.calls.Load(); n != callsWhenOpened {
		t.Fatalf("open breaker let %d calls through to the layer", n-callsWhenOpened)
	}
	if s := c.Stats().Layers[1]; s.Skipped == 0 {
		t.Fatal("skipped operations not counted")
	}
	var le *layercache.LayerError
	if err := layercache.Set(ctx, c, "f", "x"); !errors.As(err, &le) || !errors.Is(err, layercache.ErrLayerUnavailable) || le.Layer != "bytes" {
		t.Fatalf("Set with breaker open: %v", err)
	}

	// The layer comes back: after RetryAfter one probe closes the breaker.
	l2.failing.Store(false)
	probe := 0
	eventually(t, "the breaker to close", func() bool {
		probe++ // a new key each time: a warm one would never reach L2
		key := fmt.Sprint("probe", probe)
		_, _ = layercache.Get(ctx, c, key, load(key))
		return c.Stats().Layers[1].Breaker == layercache.BreakerClosed
	})
	must(t, layercache.Set(ctx, c, "h", "x"))
	if !l2.has("h") {
		t.Fatal("L2 not written after the breaker closed")
	}
}

func TestDegradation_HangingLayerCostsOneTimeout(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{Timeout: 20 * time.Millisecond, FailureThreshold: 2, RetryAfter: time.Hour}))
	ctx := context.Background()
	l2.hanging.Store(true)
	v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "loaded", nil })
	if v != "loaded" || err != nil {
		t.Fatalf("got %q, %v", v, err)
	}
	// The read timed out once; the background write times out too and
	// opens the breaker; from then on the layer is not touched.
	eventually(t, "the breaker to open", func() bool {
		return c.Stats().Layers[1].Breaker == layercache.BreakerOpen
	})
	before := l2.calls.Load()
	if v, err := layercache.Get(ctx, c, "k2", func(context.Context) (string, error) { return "x", nil }); v != "x" || err != nil {
		t.Fatal(v, err)
	}
	if l2.calls.Load() != before {
		t.Fatal("a hanging layer behind an open breaker was called")
	}
	// Warm keys never touched L2 at all.
	if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "", errors.New("must not load") }); v != "loaded" || err != nil {
		t.Fatalf("warm hit: %q, %v", v, err)
	}
}

func TestDegradation_CallerCancellationDoesNotTripBreaker(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{l2}, layercache.WithDegradation(layercache.Degradation{FailureThreshold: 1, Timeout: time.Hour}))
	l2.hanging.Store(true)
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, _ = layercache.Lookup[string](ctx, c, "k")
	}
	if s := c.Stats().Layers[0]; s.Breaker != layercache.BreakerClosed {
		t.Fatalf("callers giving up opened the breaker: %+v", s)
	}
}

func TestWriteBack_FullQueueDropsAndCounts(t *testing.T) {
	l2 := newByteLayer()
	l2.hanging.Store(true) // every background write waits for its timeout
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithWriteBackQueue(1),
		layercache.WithDegradation(layercache.Degradation{Timeout: 50 * time.Millisecond, FailureThreshold: 1000}))
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			key := fmt.Sprint("k", i)
			if _, err := layercache.Get(ctx, c, key, func(context.Context) (int, error) { return i, nil }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c.Stats().WriteBackDropped == 0 {
		t.Fatal("no background write was dropped with a queue of 1 and a hanging layer")
	}
}
