package layercache_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// afterSetMemory is a memory layer that runs a hook once after a write
// landed, to put another operation in the window between a write and the
// check that follows it.
type afterSetMemory struct {
	*memory.Layer
	after atomic.Pointer[func(key string)]
}

func (m *afterSetMemory) Set(ctx context.Context, key string, e *driver.Entry) error {
	err := m.Layer.Set(ctx, key, e)
	if f := m.after.Swap(nil); f != nil {
		(*f)(key)
	}
	return err
}

func (m *afterSetMemory) once(f func(key string)) { m.after.Store(&f) }

// afterSetRedis is the same for a Redis layer; DeleteIfHolds and Shared are
// the Redis layer's own.
type afterSetRedis struct {
	*redis.Layer
	after atomic.Pointer[func(key string)]
}

func (r *afterSetRedis) Set(ctx context.Context, key string, e *driver.Entry) error {
	err := r.Layer.Set(ctx, key, e)
	if f := r.after.Swap(nil); f != nil {
		(*f)(key)
	}
	return err
}

func (r *afterSetRedis) once(f func(key string)) { r.after.Store(&f) }

func newRedisLayer(t *testing.T, srv *redistest.Server, o redis.Options) *redis.Layer {
	t.Helper()
	o.Client = srv.Client(t)
	if o.Prefix == "" {
		o.Prefix = "test:"
	}
	l, err := redis.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lookupString(t testing.TB, c *layercache.Cache, key string) string {
	t.Helper()
	v, ok, err := layercache.Lookup[string](context.Background(), c, key)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<miss>"
	}
	return v
}

// A Set that lands between a load's write to L1 and the load's check of its
// guard must survive: the load takes back only its own value.
func TestGet_LoadTakesBackOnlyItsOwnWriteInMemory(t *testing.T) {
	l1 := &afterSetMemory{Layer: newMemory(t, memoryOpts)}
	c := newCache(t, []driver.Layer{l1})
	ctx := context.Background()
	l1.once(func(key string) { must(t, layercache.Set(ctx, c, key, "written")) })
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "loaded", nil }); err != nil {
		t.Fatal(err)
	}
	if got := lookupString(t, c, "k"); got != "written" {
		t.Fatalf("after a Set raced the load's write, Lookup = %s, want written", got)
	}
}

// The same in Redis, where the load's write is synchronous.
func TestGet_LoadTakesBackOnlyItsOwnWriteInRedis(t *testing.T) {
	srv := redistest.Start(t)
	l2 := &afterSetRedis{Layer: newRedisLayer(t, srv, redis.Options{})}
	c := newCache(t, []driver.Layer{l2})
	ctx := context.Background()
	l2.once(func(key string) { must(t, layercache.Set(ctx, c, key, "written")) })
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "loaded", nil }); err != nil {
		t.Fatal(err)
	}
	if got := lookupString(t, c, "k"); got != "written" {
		t.Fatalf("after a Set raced the load's write, Lookup = %s, want written", got)
	}
}

// Another instance's change heard just after a load wrote the shared layer
// takes the load's older value back, whatever the write mode.
func TestBus_LateInvalidationTakesBackSynchronousWrites(t *testing.T) {
	cases := []struct {
		name  string
		stack func(t *testing.T, l2 driver.Layer) []driver.Layer
		opts  []layercache.Option
	}{
		{"strict writes", withL1, []layercache.Option{layercache.WithStrictWrites()}},
		{"coordinator", withL1, []layercache.Option{layercache.WithCoordinator(localCoord{})}},
		{"no in-process layer", func(_ *testing.T, l2 driver.Layer) []driver.Layer { return []driver.Layer{l2} }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l2 := &hookLayer{byteLayer: newByteLayer()}
			bus := &manualBus{}
			c := newCache(t, tc.stack(t, sharedHook{l2}), append(tc.opts, slow, layercache.WithBus(bus))...)
			ctx := context.Background()
			if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "old", nil }); err != nil {
				t.Fatal(err)
			}
			if !l2.has("k") {
				t.Fatal("setup: the shared layer should hold the loaded value")
			}
			bus.deliver(driver.Message{Op: driver.OpDelete, Keys: []string{"k"}})
			if !within(3*time.Second, func() bool { return !l2.has("k") }) {
				t.Fatal("the shared layer still holds the value loaded just before another instance's Delete")
			}
		})
	}
}

func withL1(t *testing.T, l2 driver.Layer) []driver.Layer {
	return []driver.Layer{newMemory(t, memoryOpts), l2}
}

// countingLoader returns v and counts its calls.
func countingLoader(n *atomic.Int64, v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		n.Add(1)
		return v, nil
	}
}

// Early refresh must refresh also when a coordinator is set: the entry that
// prompted the refresh is not another instance's load.
func TestGet_EarlyRefreshWorksWithCoordinator(t *testing.T) {
	c, _ := memCache(t, layercache.WithCoordinator(localCoord{}))
	ctx := context.Background()
	var loads atomic.Int64
	// Fresh for an hour, refreshed early within the last two: every hit
	// refreshes with a probability of at least exp(-2).
	opts := []layercache.EntryOption{layercache.WithTTL(time.Hour), layercache.WithEarlyRefresh(2 * time.Hour)}
	for range 200 {
		if _, err := layercache.Get(ctx, c, "k", countingLoader(&loads, "v"), opts...); err != nil {
			t.Fatal(err)
		}
	}
	if loads.Load() < 2 {
		t.Fatalf("the loader ran %d times in 200 hits inside the early-refresh window; it never refreshed", loads.Load())
	}
}

// Stale-while-revalidate serves the stale value at once also when it is
// found below L1.
func TestGet_StaleWhileRevalidateServesStaleFromLowerLayer(t *testing.T) {
	srv := redistest.Start(t)
	l1 := newMemory(t, memory.Options{MaxSize: 100, TTL: 10 * time.Millisecond})
	c := newCache(t, []driver.Layer{l1, newRedisLayer(t, srv, redis.Options{})}, layercache.WithStrictWrites())
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(50 * time.Millisecond), layercache.WithStaleWhileRevalidate(time.Hour)}
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "old", nil }, opts...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond) // gone from L1, stale in Redis

	release := make(chan struct{})
	refreshed := make(chan string, 1)
	go func() {
		v, _ := layercache.Get(ctx, c, "k", func(context.Context) (string, error) {
			<-release
			return "new", nil
		}, opts...)
		refreshed <- v
	}()
	eventually(t, "the refresh to start", func() bool { return c.Stats().Loads == 2 })

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := layercache.Get(wctx, c, "k", func(context.Context) (string, error) {
		return "", errors.New("a second refresh must not run")
	}, opts...)
	close(release)
	if err != nil || v != "old" {
		t.Fatalf("during a refresh, Get = %q, %v; want the stale value at once", v, err)
	}
	if got := <-refreshed; got != "new" {
		t.Fatalf("the refreshing caller got %q, want new", got)
	}
	if c.Stats().StaleServed == 0 {
		t.Fatal("StaleServed was not counted")
	}
}

// Values the layer refuses (too large) say nothing about its health.
func TestRedis_OversizedValuesDoNotOpenBreaker(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	writer := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{})})
	must(t, layercache.Set(ctx, writer, "small", "in redis"))

	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), newRedisLayer(t, srv, redis.Options{MaxValueSize: 1024})})
	big := strings.Repeat("x", 4096)
	for i := range 10 {
		err := layercache.Set(ctx, c, "big", big+string(rune('a'+i)))
		if !errors.Is(err, redis.ErrValueTooLarge) {
			t.Fatalf("Set of an oversized value: %v, want ErrValueTooLarge", err)
		}
	}
	if got := lookupString(t, c, "small"); got != "in redis" {
		t.Fatalf("Lookup of a small key in Redis = %s after oversized writes; breaker %v", got, c.Stats().Layers[1].Breaker)
	}
	if s := c.Stats().Layers[1]; s.Breaker != layercache.BreakerClosed || s.Errors != 0 {
		t.Fatalf("oversized writes moved the breaker or counted as layer errors: %+v", s)
	}
}

// A refresh that finds the value gone removes it, also when absences are
// not cached.
func TestGet_RefreshNotFoundRemovesOldValue(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(time.Hour), layercache.WithEarlyRefresh(2 * time.Hour), layercache.WithNegativeTTL(0)}
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "old", nil }, opts...); err != nil {
		t.Fatal(err)
	}
	gone := func(context.Context) (string, error) { return "", layercache.ErrNotFound }
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("no early refresh in 1000 hits")
		}
		if _, err := layercache.Get(ctx, c, "k", gone, opts...); errors.Is(err, layercache.ErrNotFound) {
			break
		}
	}
	if got := lookupString(t, c, "k"); got != "<miss>" {
		t.Fatalf("after the loader said the value is gone, Lookup = %s", got)
	}
}

// Durations too long to add to the clock saturate instead of wrapping.
func TestSet_VeryLongDurationsAreCached(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	forever := time.Duration(math.MaxInt64)
	cases := map[string][]layercache.EntryOption{
		"ttl max":            {layercache.WithTTL(forever)},
		"ttl 250 years":      {layercache.WithTTL(250 * 365 * 24 * time.Hour)},
		"swr max":            {layercache.WithTTL(time.Hour), layercache.WithStaleWhileRevalidate(forever)},
		"stale-if-error max": {layercache.WithTTL(time.Hour), layercache.WithStaleIfError(forever)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), newRedisLayer(t, srv, redis.Options{Prefix: name + ":"})}, layercache.WithStrictWrites())
			must(t, layercache.Set(ctx, c, "k", "v", opts...))
			if got := lookupString(t, c, "k"); got != "v" {
				t.Fatalf("Lookup in L1 = %s", got)
			}
			other := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{Prefix: name + ":"})})
			if got := lookupString(t, other, "k"); got != "v" {
				t.Fatalf("Lookup in Redis = %s", got)
			}
		})
	}
}

// Options given to Open win over the file, the namespace too.
func TestOpen_WithNamespaceWinsOverFile(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv("LAYERCACHE_LAYERS__1__URL", srv.URL())
	c := openExample(t, "redis.yaml", layercache.WithNamespace("tenant2"))
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "k", "v"))
	raw := srv.Client(t)
	if n := raw.Exists(ctx, "tenant2:k").Val(); n != 1 {
		keys := raw.Keys(ctx, "*").Val()
		t.Fatalf("Redis holds %v; want the key under the namespace given to Open, tenant2:k", keys)
	}
}
