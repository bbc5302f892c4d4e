package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
)

// hookLayer is a byteLayer whose operations can be held at a gate.
type hookLayer struct {
	*byteLayer
	onGet    func(ctx context.Context, key string) error
	afterGet func(ctx context.Context, key string)
	onSet    func(ctx context.Context, key string) error
	onDelete func(ctx context.Context, keys []string) error
}

func (h *hookLayer) Get(ctx context.Context, key string) (*driver.Entry, error) {
	if h.onGet != nil {
		if err := h.onGet(ctx, key); err != nil {
			return nil, err
		}
	}
	e, err := h.byteLayer.Get(ctx, key)
	if h.afterGet != nil {
		h.afterGet(ctx, key)
	}
	return e, err
}

func (h *hookLayer) Set(ctx context.Context, key string, e *driver.Entry) error {
	if h.onSet != nil {
		if err := h.onSet(ctx, key); err != nil {
			return err
		}
	}
	return h.byteLayer.Set(ctx, key, e)
}

func (h *hookLayer) Delete(ctx context.Context, keys ...string) error {
	if h.onDelete != nil {
		if err := h.onDelete(ctx, keys); err != nil {
			return err
		}
	}
	return h.byteLayer.Delete(ctx, keys...)
}

// sharedHook is a hookLayer that says it is shared (like Redis).
type sharedHook struct{ *hookLayer }

func (sharedHook) Shared() {}

// gate holds the first armed caller until released.
type gate struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) hold() {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
}

var slow = layercache.WithDegradation(layercache.Degradation{Timeout: 10 * time.Second})

// Regression: Close while a load is running: the load's background write is sent on
// the closed write-back channel and panics.
func TestClose_DuringLoadDoesNotPanic(t *testing.T) {
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), newByteLayer()})
	release := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _ = layercache.Get(context.Background(), c, "k", func(context.Context) (string, error) {
			<-release
			return "v", nil
		})
	}()
	eventually(t, "load to start", func() bool { return c.Stats().Loads == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if p := <-panicked; p != nil {
		t.Fatalf("Get running across Close panicked: %v", p)
	}
}

// Regression: A load that registers after Delete's guard but reads L2 before Delete
// reaches L2 backfills L1 with the deleted value, which outlives Delete.
func TestDelete_RacingReadDoesNotRestoreOldValue(t *testing.T) {
	g := newGate()
	l2 := &hookLayer{byteLayer: newByteLayer()}
	l2.onDelete = func(context.Context, []string) error { g.hold(); return nil }
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, slow)
	ctx := context.Background()
	if err := layercache.Set(ctx, c, "k", "old"); err != nil {
		t.Fatal(err)
	}
	g.armed.Store(true)
	delDone := make(chan error)
	go func() { delDone <- c.Delete(ctx, "k") }()
	<-g.entered // L1 already deleted; L2 not yet
	v, _ := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "new", nil })
	t.Logf("concurrent read got %q (fine either way)", v)
	close(g.release)
	if err := <-delDone; err != nil {
		t.Fatal(err)
	}
	v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "new", nil })
	if err != nil || v != "new" {
		t.Fatalf("after Delete returned, Get = %q, %v; the deleted value survived in L1", v, err)
	}
}

// Regression: A backfill of a remote layer (hit in L3, written to L2 in the
// background) is not guarded: a Delete that lands before it is undone.
func TestDelete_WinsOverQueuedBackfill(t *testing.T) {
	g := newGate()
	l2 := &hookLayer{byteLayer: newByteLayer()}
	l2.onSet = func(context.Context, string) error { g.hold(); return nil }
	l3 := sharedHook{&hookLayer{byteLayer: newByteLayer()}} // a second shared layer
	seed := newCache(t, []driver.Layer{l3})
	ctx := context.Background()
	if err := layercache.Set(ctx, seed, "k", "old"); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), sharedHook{l2}, l3}, slow)
	g.armed.Store(true)
	if v, _ := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "new", nil }); v != "old" {
		t.Fatalf("seed: got %q", v)
	}
	<-g.entered // the background backfill of L2 is under way
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	_ = c.Close() // waits for the background write
	if l2.has("k") {
		t.Fatal("L2 (shared) holds the value deleted before the background backfill landed")
	}
}

// Regression: A load registered before InvalidateTags but called without WithTags
// (the entry's tags come from whoever wrote it) is not marked, so its
// backfill restores the invalidated entry in L1.
func TestInvalidateTags_CatchesReadOfEntryTaggedByItsWriter(t *testing.T) {
	g := newGate()
	l2 := &hookLayer{byteLayer: newByteLayer()}
	l2.afterGet = func(context.Context, string) { g.hold() } // read done, not yet returned
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, slow)
	ctx := context.Background()
	// Written by someone else (another instance, or an earlier Set): in L2 only.
	if err := layercache.Set(ctx, newCache(t, []driver.Layer{l2.byteLayer}), "k", "old", layercache.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	g.armed.Store(true)
	got := make(chan string)
	go func() {
		v, _ := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "new", nil })
		got <- v
	}()
	<-g.entered
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	<-got
	v, _ := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "new", nil })
	if v != "new" {
		t.Fatalf("after InvalidateTags returned, Get = %q: the invalidated entry survived", v)
	}
}

// Regression: A cached nil of an interface type comes back as ErrTypeMismatch.
func TestGet_CachedNilInterfaceValue(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	load := func(context.Context) (any, error) { return nil, nil }
	if _, err := layercache.Get(ctx, c, "k", load); err != nil {
		t.Fatal(err)
	}
	if v, err := layercache.Get(ctx, c, "k", load); err != nil {
		t.Fatalf("second Get of a cached nil any: %v, %v", v, err)
	}
}

// Regression: An operation that started before the breaker opened and succeeds after
// closes the breaker again.
func TestBreaker_SuccessBegunBeforeOpeningDoesNotClose(t *testing.T) {
	g := newGate()
	l2 := &hookLayer{byteLayer: newByteLayer()}
	l2.onGet = func(_ context.Context, key string) error {
		if key == "slow" {
			g.hold()
			return nil
		}
		return errDown
	}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{Timeout: 10 * time.Second, FailureThreshold: 1, RetryAfter: time.Hour}))
	ctx := context.Background()
	g.armed.Store(true)
	done := make(chan struct{})
	go func() { _, _, _ = layercache.Lookup[string](ctx, c, "slow"); close(done) }()
	<-g.entered
	_, _, _ = layercache.Lookup[string](ctx, c, "bad")
	if s := c.Stats().Layers[1].Breaker; s != layercache.BreakerOpen {
		t.Fatalf("breaker %v after a failure with threshold 1", s)
	}
	close(g.release)
	<-done
	if s := c.Stats().Layers[1].Breaker; s != layercache.BreakerOpen {
		t.Fatalf("breaker %v: a success that began before it opened closed it within RetryAfter", s)
	}
}

// Regression: A half-open probe whose caller gives up counts as a success and closes
// the breaker of a layer that is still dead.
func TestBreaker_AbandonedProbeDoesNotClose(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{Timeout: 10 * time.Second, FailureThreshold: 1, RetryAfter: 20 * time.Millisecond}))
	ctx := context.Background()
	l2.failing.Store(true)
	_, _, _ = layercache.Lookup[string](ctx, c, "k")
	if s := c.Stats().Layers[1].Breaker; s != layercache.BreakerOpen {
		t.Fatalf("breaker %v", s)
	}
	time.Sleep(40 * time.Millisecond)
	l2.hanging.Store(true) // still dead: hangs
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, _, _ = layercache.Lookup[string](cctx, c, "k") // the probe
	if s := c.Stats().Layers[1].Breaker; s == layercache.BreakerClosed {
		t.Fatal("a probe abandoned by its caller closed the breaker of a dead layer")
	}
}

// Regression: A loader that calls runtime.Goexit (t.FailNow in a loader) leaves its
// call registered for ever: every later Get of the key waits for it.
func TestGet_LoaderGoexitDoesNotWedgeKey(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = layercache.Get(ctx, c, "k", func(context.Context) (int, error) { runtime.Goexit(); return 0, nil })
	}()
	<-done
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := layercache.Get(cctx, c, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatalf("key wedged after a loader Goexit: %v", err)
	}
}

// Regression: An L1 hit on an entry with a stale window (WithStaleWhileRevalidate,
// WithStaleIfError defaults, as config files set) takes the slow path; it
// must still allocate nothing.
func TestGet_L1HitWithStaleWindowAllocatesNothing(t *testing.T) {
	c, _ := memCache(t, layercache.WithDefaults(layercache.WithStaleIfError(time.Minute)))
	ctx := context.Background()
	id := 42
	get := func() {
		_, _ = layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) {
			return user{ID: int64(id)}, nil
		}, layercache.WithTTL(time.Minute), layercache.WithTags("users"))
	}
	get()
	if n := testing.AllocsPerRun(100, get); n != 0 {
		t.Fatalf("an L1 hit on an entry with a stale window allocated %v times", n)
	}
}

// Regression: With a coordinator, a stale L1 entry hides the fresh value another
// instance already put in the shared layer: every instance reloads.
type localCoord struct{}

type noLock struct{}

func (noLock) Release(context.Context) error { return nil }

func (localCoord) Acquire(context.Context, string) (driver.Lock, error) { return noLock{}, nil }
func (localCoord) Wait(context.Context, string) error                   { return nil }
func (localCoord) Close() error                                         { return nil }

func TestGet_StaleL1DoesNotHideFreshSharedValue(t *testing.T) {
	shared := newByteLayer()
	sh := sharedHook{&hookLayer{byteLayer: shared}}
	opts := []layercache.Option{layercache.WithCoordinator(localCoord{}), slow}
	a := newCache(t, []driver.Layer{newMemory(t, memoryOpts), sh}, opts...)
	b := newCache(t, []driver.Layer{newMemory(t, memoryOpts), sh}, opts...)
	ctx := context.Background()
	var loadsA, loadsB atomic.Int32
	eo := []layercache.EntryOption{layercache.WithTTL(50 * time.Millisecond), layercache.WithStaleWhileRevalidate(time.Hour)}
	getA := func() (string, error) {
		return layercache.Get(ctx, a, "k", func(context.Context) (string, error) {
			return fmt.Sprint("a", loadsA.Add(1)), nil
		}, eo...)
	}
	getB := func() (string, error) {
		return layercache.Get(ctx, b, "k", func(context.Context) (string, error) {
			return fmt.Sprint("b", loadsB.Add(1)), nil
		}, eo...)
	}
	getA()
	getB() // backfilled from the shared layer
	time.Sleep(70 * time.Millisecond)
	getA() // refreshes, writes the shared layer synchronously (coordinator)
	getB()
	if n := loadsB.Load(); n != 0 {
		t.Fatalf("instance B ran its loader %d times although the shared layer held a fresh value", n)
	}
}

var _ = sync.Mutex{}
var _ = errors.New

// Regression: Callers whose deadline is shorter than the layer timeout make every
// hung operation "healthy", which resets the consecutive-failure count: a
// hung layer's breaker never opens under mixed traffic.
func TestBreaker_OpensUnderCallersWithShortDeadlines(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{Timeout: 30 * time.Millisecond, FailureThreshold: 2, RetryAfter: time.Hour}))
	ctx := context.Background()
	l2.hanging.Store(true)
	for range 4 {
		_, _, _ = layercache.Lookup[string](ctx, c, "k") // layer timeout: a failure
		short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		_, _, _ = layercache.Lookup[string](short, c, "k") // caller deadline: counted healthy
		cancel()
	}
	if s := c.Stats().Layers[1]; s.Breaker != layercache.BreakerOpen {
		t.Fatalf("after 4 timeouts (threshold 2) against a hung layer the breaker is %v (errors=%d)", s.Breaker, s.Errors)
	}
}

// Regression: WithClone promises every read its own copy; a []byte value is handed
// out aliased (the raw codec path copies nothing).
func TestGet_WithCloneCopiesBytes(t *testing.T) {
	c, _ := memCache(t, layercache.WithClone())
	ctx := context.Background()
	load := func(context.Context) ([]byte, error) { return []byte("abc"), nil }
	a, _ := layercache.Get(ctx, c, "k", load)
	a[0] = 'X'
	b, _ := layercache.Get(ctx, c, "k", load)
	if string(b) != "abc" {
		t.Fatalf("WithClone: a caller's mutation reached the cache: %q", b)
	}
}

// Regression: Get[any] whose loader returns a string (or []byte, time.Time) writes
// it to L2 under the raw "string" codec, which decodeValue[any] refuses: the
// entry in L2 is never readable, every cold instance reloads and counts an
// error.
func TestGet_AnyHoldingRawValueReadsBackFromL2(t *testing.T) {
	l2 := newByteLayer()
	ctx := context.Background()
	var loads atomic.Int32
	load := func(context.Context) (any, error) { loads.Add(1); return "hello", nil }
	a := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, layercache.WithStrictWrites())
	if _, err := layercache.Get(ctx, a, "k", load); err != nil {
		t.Fatal(err)
	}
	b := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2})
	v, err := layercache.Get(ctx, b, "k", load)
	if err != nil || v != "hello" {
		t.Fatal(v, err)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times; L2 errors on instance b: %d", n, b.Stats().Layers[1].Errors)
	}
}

// Regression: A leader whose context ends and whose loader reports it with its own
// error (not wrapping ctx.Err(), as many database drivers do) hands that
// error to every waiter instead of letting one of them take over.
func TestGet_WaiterDoesNotInheritLeadersCancellation(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	lctx, cancel := context.WithCancel(ctx)
	leaderIn := make(chan struct{})
	go func() {
		_, _ = layercache.Get(lctx, c, "k", func(ctx context.Context) (string, error) {
			close(leaderIn)
			<-ctx.Done()
			return "", errors.New("pq: canceling statement due to user request")
		})
	}()
	<-leaderIn
	got := make(chan error, 1)
	go func() {
		_, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "v", nil })
		got <- err
	}()
	eventually(t, "the waiter to join", func() bool { return c.Stats().Deduplicated == 1 })
	cancel()
	if err := <-got; err != nil {
		t.Fatalf("a waiter with a live context got the leader's cancellation: %v", err)
	}
}

// Regression: a nil cached through Get[any] read back as a string came back
// as "" instead of a type mismatch.
func TestGet_CachedNilIsNotAnyType(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (any, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "loaded", nil }); !errors.Is(err, layercache.ErrTypeMismatch) {
		t.Fatalf("Get[string] of a cached nil interface = %q, %v; want ErrTypeMismatch", v, err)
	}
}
