package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/disk"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// Tags from several WithTags, and from the defaults, add up.
func TestWithTags_AddUp(t *testing.T) {
	c, _ := memCache(t, layercache.WithDefaults(layercache.WithTags("default")))
	ctx := context.Background()
	for _, tag := range []string{"a", "b", "default"} {
		must(t, layercache.Set(ctx, c, "k", "v", layercache.WithTags("a"), layercache.WithTags("b")))
		must(t, c.InvalidateTags(ctx, tag))
		if got := lookupString(t, c, "k"); got != "<miss>" {
			t.Errorf("InvalidateTags(%q) left the entry tagged a, b and (by default) default", tag)
		}
	}
}

// A cache created WithClone keeps its own copy of what it is given.
func TestWithClone_CopiesOnTheWayIn(t *testing.T) {
	c, _ := memCache(t, layercache.WithClone())
	ctx := context.Background()

	given := map[string]int{"n": 1}
	must(t, layercache.Set(ctx, c, "set", given))
	given["n"] = 2

	var kept map[string]int
	if _, err := layercache.Get(ctx, c, "loaded", func(context.Context) (map[string]int, error) {
		kept = map[string]int{"n": 1}
		return kept, nil
	}); err != nil {
		t.Fatal(err)
	}
	kept["n"] = 2

	for _, key := range []string{"set", "loaded"} {
		v, ok, err := layercache.Lookup[map[string]int](ctx, c, key)
		if err != nil || !ok || v["n"] != 1 {
			t.Errorf("%s: Lookup = %v, %v, %v; the caller's later change reached the cache", key, v, ok, err)
		}
	}
}

// New and Open without a defaults block give entries the same lifetimes.
func TestNewAndOpen_ShareDefaults(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	raw := srv.Client(t)

	built := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{Prefix: "new:"})})
	opened, err := layercache.Open(writeConfig(t, fmt.Sprintf("namespace: open\nlayers:\n  - driver: redis\n    url: %s\n", srv.URL())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = opened.Close() })

	for prefix, c := range map[string]*layercache.Cache{"new:": built, "open:": opened} {
		must(t, layercache.Set(ctx, c, "k", "v"))
		if _, err := layercache.Get(ctx, c, "absent", func(context.Context) (string, error) { return "", layercache.ErrNotFound }); !errors.Is(err, layercache.ErrNotFound) {
			t.Fatal(err)
		}
		for key, want := range map[string]time.Duration{"k": config.DefaultTTL, "absent": config.DefaultNegativeTTL} {
			got := raw.PTTL(ctx, prefix+key).Val()
			if got > want || got < want-5*time.Second {
				t.Errorf("%s%s lives %v, want the default %v", prefix, key, got, want)
			}
		}
	}
}

// A loader that asks for the key it is loading gets an error, not a
// deadlock.
func TestGet_LoaderAskingForItsOwnKeyFails(t *testing.T) {
	c, _ := memCache(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var inner error
	var load func(ctx context.Context) (string, error)
	load = func(ctx context.Context) (string, error) {
		_, inner = layercache.Get(ctx, c, "other", func(ctx context.Context) (string, error) {
			return layercache.Get(ctx, c, "k", load)
		})
		return "v", nil
	}
	v, err := layercache.Get(ctx, c, "k", load)
	if err != nil || v != "v" {
		t.Fatalf("outer Get = %q, %v", v, err)
	}
	if !errors.Is(inner, layercache.ErrRecursiveLoad) {
		t.Fatalf("a loader asking (through another loader) for its own key got %v, want ErrRecursiveLoad", inner)
	}
	// The same key in another cache is not recursion.
	other, _ := memCache(t)
	if v, err := layercache.Get(ctx, c, "x", func(ctx context.Context) (string, error) {
		return layercache.Get(ctx, other, "x", func(context.Context) (string, error) { return "inner", nil })
	}); err != nil || v != "inner" {
		t.Fatalf("nested Get of the same key in another cache = %q, %v", v, err)
	}
}

// ctxBus records whether Publish was handed a live context.
type ctxBus struct {
	manualBus
	published chan error
}

func (b *ctxBus) Publish(ctx context.Context, _ driver.Message) error {
	b.published <- ctx.Err()
	return ctx.Err()
}

// The bus message is sent even when the caller's context ends after the
// layers changed.
func TestDelete_PublishesDespiteCallerCancellation(t *testing.T) {
	bus := &ctxBus{published: make(chan error, 1)}
	c, _ := memCache(t, layercache.WithBus(bus))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Delete(ctx, "k")
	if err := <-bus.published; err != nil {
		t.Fatalf("Publish ran under the caller's ended context (%v): the other instances never hear of the Delete", err)
	}
}

// countingBusDriver opens manual buses and counts them.
type countingBusDriver struct{ opened atomic.Int64 }

func (d *countingBusDriver) OpenBus(context.Context, driver.Config, driver.Stack) (driver.Bus, error) {
	d.opened.Add(1)
	return &manualBus{}, nil
}

var countingBuses = &countingBusDriver{}

func init() { driver.Register("counting-bus", countingBuses) }

// A bus given in code replaces the file's, which is then not opened.
func TestOpen_WithBusReplacesFileBus(t *testing.T) {
	path := writeConfig(t, "layers:\n  - driver: memory\nbus:\n  driver: counting-bus\n")
	before := countingBuses.opened.Load()
	c, err := layercache.Open(path, layercache.WithBus(&manualBus{}))
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Close())
	if n := countingBuses.opened.Load() - before; n != 0 {
		t.Fatalf("the file's bus was opened %d times beside the one given in code, and never closed", n)
	}
}

// A hit in a private persistent layer refills L1 but not the shared layer.
func TestGet_PrivateLayerHitDoesNotBackfillSharedLayer(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	ctx := context.Background()
	stack := func() *layercache.Cache {
		d, err := disk.New(disk.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		c, err := layercache.New([]driver.Layer{newMemory(t, memoryOpts), newRedisLayer(t, srv, redis.Options{}), d})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := stack()
	must(t, layercache.Set(ctx, c, "k", "from disk"))
	must(t, c.Close())
	raw := srv.Client(t)
	must(t, raw.Del(ctx, "test:k").Err()) // invalidated while this instance was away

	c = stack()
	if got := lookupString(t, c, "k"); got != "from disk" {
		t.Fatalf("Lookup = %s, want the disk's value", got)
	}
	must(t, c.Close()) // drains background writes
	if n := raw.Exists(ctx, "test:k").Val(); n != 0 {
		t.Fatal("a value read from the private disk layer was copied into shared Redis")
	}
}

// A loader sets its entry's options from the value it loaded, or keeps it
// out of the cache.
func TestGet_LoaderDecidesAboutItsEntry(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	if layercache.SetEntryOptions(ctx, layercache.WithTTL(time.Second)) || layercache.DoNotStore(ctx) {
		t.Fatal("outside a loader, SetEntryOptions and DoNotStore must report false")
	}
	v, err := layercache.Get(ctx, c, "token", func(ctx context.Context) (string, error) {
		// The token says it expires in 50ms; the call asked for an hour.
		layercache.SetEntryOptions(ctx, layercache.WithTTL(50*time.Millisecond), layercache.WithTags("tokens"))
		return "t1", nil
	}, layercache.WithTTL(time.Hour), layercache.WithTags("auth"))
	if err != nil || v != "t1" {
		t.Fatal(v, err)
	}
	must(t, c.InvalidateTags(ctx, "tokens"))
	if got := lookupString(t, c, "token"); got != "<miss>" {
		t.Fatalf("the loader's tag did not reach the entry: Lookup = %s", got)
	}
	if _, err := layercache.Get(ctx, c, "token", func(ctx context.Context) (string, error) {
		layercache.SetEntryOptions(ctx, layercache.WithTTL(50*time.Millisecond))
		return "t2", nil
	}, layercache.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the entry to expire on the loader's TTL", func() bool { return lookupString(t, c, "token") == "<miss>" })

	v, err = layercache.Get(ctx, c, "partial", func(ctx context.Context) (string, error) {
		layercache.DoNotStore(ctx)
		return "partial", nil
	})
	if err != nil || v != "partial" {
		t.Fatal(v, err)
	}
	if got := lookupString(t, c, "partial"); got != "<miss>" {
		t.Fatalf("a value its loader asked not to store was stored: %s", got)
	}
}

// An aligned expiry makes the entry fresh until the next boundary.
func TestSet_ExpiryAlignedToTheHour(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "k", "v", layercache.WithTTL(24*time.Hour), layercache.WithExpiryAligned(time.Hour, time.UTC)))
	got, err := c.Inspect(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	want := now.Truncate(time.Hour).Add(time.Hour).Sub(now)
	if d := got[0].StaleIn - want; d > time.Second || d < -time.Second {
		t.Fatalf("fresh for %v, want until the top of the hour (%v)", got[0].StaleIn, want)
	}
}
