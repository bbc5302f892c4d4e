package layercache_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
)

// manualBus is a bus whose incoming messages the test delivers by hand, as
// if another instance had sent them.
type manualBus struct {
	mu     sync.Mutex
	handle func(driver.Message)
}

func (b *manualBus) Publish(context.Context, driver.Message) error { return nil }
func (b *manualBus) Subscribe(_ context.Context, h func(driver.Message), _ func()) error {
	b.mu.Lock()
	b.handle = h
	b.mu.Unlock()
	return nil
}
func (b *manualBus) Close() error { return nil }
func (b *manualBus) deliver(m driver.Message) {
	m.Origin = "another-instance"
	b.mu.Lock()
	h := b.handle
	b.mu.Unlock()
	h(m)
}

// within polls cond for up to d.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}

// Regression: A background write of a loaded value goes to L2 (shared) and
// then L3 (private disk). Another instance's invalidation heard after the L2
// write landed but before the whole job ended (writtenAt still 0) marks the
// call without taking the L2 write back, and nothing takes it back later:
// the older value survives the invalidation in the shared layer.
func TestBus_InvalidationDuringMultiLayerWriteTakesSharedWriteBack(t *testing.T) {
	g := newGate()
	l2 := &hookLayer{byteLayer: newByteLayer()}
	l3 := &hookLayer{byteLayer: newByteLayer()}
	l3.onSet = func(context.Context, string) error { g.hold(); return nil }
	bus := &manualBus{}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), sharedHook{l2}, l3}, slow, layercache.WithBus(bus))
	ctx := context.Background()
	g.armed.Store(true)
	if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "old", nil }); err != nil || v != "old" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	<-g.entered // L2 holds "old" (landed after the other instance's Set); L3 write under way
	if !l2.has("k") {
		t.Fatal("setup: L2 should hold the loaded value by now")
	}
	bus.deliver(driver.Message{Op: driver.OpSet, Keys: []string{"k"}})
	close(g.release)
	if !within(3*time.Second, func() bool { return !l2.has("k") }) {
		t.Fatal("the shared layer still holds the value loaded before another instance's Set; it was never taken back")
	}
}

// The same invalidation heard after the whole write
// ended is taken back.
func TestBus_InvalidationAfterWriteIsTakenBack(t *testing.T) {
	l2 := &hookLayer{byteLayer: newByteLayer()}
	l3 := &hookLayer{byteLayer: newByteLayer()}
	bus := &manualBus{}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), sharedHook{l2}, l3}, slow, layercache.WithBus(bus))
	ctx := context.Background()
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "old", nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "write ended", func() bool { return l3.has("k") })
	time.Sleep(50 * time.Millisecond)
	bus.deliver(driver.Message{Op: driver.OpSet, Keys: []string{"k"}})
	if !within(3*time.Second, func() bool { return !l2.has("k") }) {
		t.Fatal("control: not taken back")
	}
}

// Regression: A read (Lookup, or Get without WithTags) that backfills a
// tagged entry into the shared layer is guarded with no tags. When another
// instance's InvalidateTags is heard after that backfill landed, the key
// based undo does not match the guard (tags nil) and the tag epoch is only
// consulted for writes still pending: the invalidated entry stays in the
// shared layer. The same with OpDelete of the key is taken back.
func TestBus_TagInvalidationTakesBackLandedBackfill(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  driver.Message
	}{
		{"delete-key", driver.Message{Op: driver.OpDelete, Keys: []string{"k"}}},
		{"invalidate-tag", driver.Message{Op: driver.OpInvalidate, Tags: []string{"t"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l2 := &hookLayer{byteLayer: newByteLayer()}
			l3 := sharedHook{&hookLayer{byteLayer: newByteLayer()}} // a second shared layer
			ctx := context.Background()
			if err := layercache.Set(ctx, newCache(t, []driver.Layer{l3}), "k", "old", layercache.WithTags("t")); err != nil {
				t.Fatal(err)
			}
			bus := &manualBus{}
			c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), sharedHook{l2}, l3}, slow, layercache.WithBus(bus))
			if v, ok, err := layercache.Lookup[string](ctx, c, "k"); !ok || err != nil || v != "old" {
				t.Fatalf("Lookup = %q, %v, %v", v, ok, err)
			}
			eventually(t, "backfill of L2", func() bool { return l2.has("k") })
			time.Sleep(50 * time.Millisecond) // the job has ended; the guard lasts 2s more
			bus.deliver(tc.msg)
			if !within(3*time.Second, func() bool { return !l2.has("k") }) {
				t.Fatalf("%v heard after our backfill landed: the shared layer keeps the invalidated entry", tc.msg.Op)
			}
		})
	}
}

// Regression: Any tag invalidation (of an unrelated tag) during a load drops
// the load's writes of a tagged entry, even to L1: under a steady stream of
// tag invalidations, tagged keys whose load outlasts the interval are never
// cached and every Get runs the loader.
func TestInvalidateTags_UnrelatedTagKeepsLoadCached(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	var loads atomic.Int32
	load := func(ctx context.Context) (string, error) {
		loads.Add(1)
		_ = c.InvalidateTags(ctx, "unrelated") // someone else's tag, meanwhile
		return "v", nil
	}
	for range 3 {
		if _, err := layercache.Get(ctx, c, "k", load, layercache.WithTags("mine")); err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times: an invalidation of an unrelated tag kept the value from being cached", n)
	}
}

// Regression: A hung layer seen only by callers whose deadline is shorter
// than the layer timeout: every operation is "undecided", so the breaker
// never opens and every cold miss waits the caller's whole deadline on it.
func TestBreaker_OpensWhenEveryCallerHasShortDeadline(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{Timeout: 200 * time.Millisecond, FailureThreshold: 2, RetryAfter: time.Hour}))
	l2.hanging.Store(true)
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, _, _ = layercache.Lookup[string](ctx, c, "k")
		cancel()
	}
	if s := c.Stats().Layers[1]; s.Breaker != layercache.BreakerOpen {
		t.Fatalf("10 calls timed out on a hung layer (threshold 2); breaker %v, layer calls %d", s.Breaker, l2.calls.Load())
	}
}
