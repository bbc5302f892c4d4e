package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// commandCalls reads how many times Redis ran cmd since the last
// CONFIG RESETSTAT.
func commandCalls(t *testing.T, srv *redistest.Server, cmd string) int {
	t.Helper()
	info := srv.Client(t).Info(context.Background(), "commandstats").Val()
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}

func ids(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// 100 keys, 40 of them in Redis: one MGET, one batch load of the other 60,
// in the order asked.
func TestGetMany_OneBatchReadPerLayerAndOneBatchLoad(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	writer := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{})})
	keys := ids("k", 0, 100)
	for _, k := range keys[30:70] {
		must(t, layercache.Set(ctx, writer, k, "cached:"+k))
	}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), newRedisLayer(t, srv, redis.Options{})})
	must(t, srv.Client(t).ConfigResetStat(ctx).Err())

	var batches [][]string
	got, err := layercache.GetMany(ctx, c, keys, func(_ context.Context, missing []string) (map[string]string, error) {
		batches = append(batches, missing)
		out := map[string]string{}
		for _, k := range missing {
			out[k] = "loaded:" + k
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if mget, get := commandCalls(t, srv, "mget"), commandCalls(t, srv, "get"); mget != 1 || get != 0 {
		t.Fatalf("Redis ran %d MGET and %d GET, want one MGET", mget, get)
	}
	want := slices.Concat(keys[:30], keys[70:])
	if len(batches) != 1 || !slices.Equal(batches[0], want) {
		t.Fatalf("batch loads %v, want one of the 60 missing keys in order", batches)
	}
	for i, k := range keys {
		w := "loaded:" + k
		if i >= 30 && i < 70 {
			w = "cached:" + k
		}
		if got[k] != w {
			t.Fatalf("%s = %q, want %q", k, got[k], w)
		}
	}
	// Now all in L1: nothing is read or loaded.
	if _, err := layercache.GetMany(ctx, c, keys, func(context.Context, []string) (map[string]string, error) {
		t.Error("a second GetMany loaded")
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// GetMany and single Gets of the same keys, at once, load each key once.
func TestGetMany_SharesLoadsWithGet(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	keys := ids("k", 0, 50)
	loads := make(map[string]*atomic.Int32)
	for _, k := range keys {
		loads[k] = new(atomic.Int32)
	}
	batch := func(_ context.Context, missing []string) (map[string]string, error) {
		time.Sleep(20 * time.Millisecond)
		out := map[string]string{}
		for _, k := range missing {
			loads[k].Add(1)
			out[k] = "v:" + k
		}
		return out, nil
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := layercache.GetMany(ctx, c, keys, batch)
			if err != nil || len(got) != len(keys) {
				t.Errorf("GetMany: %d values, %v", len(got), err)
			}
		}()
		for _, k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := layercache.Get(ctx, c, k, func(context.Context) (string, error) {
					time.Sleep(20 * time.Millisecond)
					loads[k].Add(1)
					return "v:" + k, nil
				})
				if err != nil || v != "v:"+k {
					t.Errorf("Get(%s) = %q, %v", k, v, err)
				}
			}()
		}
	}
	wg.Wait()
	for _, k := range keys {
		if n := loads[k].Load(); n != 1 {
			t.Errorf("%s was loaded %d times", k, n)
		}
	}
}

// GetMany reads the layers before it joins the flights of the keys still
// missing. A load of such a key that ends in between is not run again:
// GetMany reads the key once more instead.
func TestGetMany_LoadEndingDuringItsReadIsNotRepeated(t *testing.T) {
	ctx := context.Background()
	remote := &hookLayer{byteLayer: newByteLayer()}
	c := newCache(t, []driver.Layer{sharedHook{remote}}, slow)
	var armed atomic.Bool
	armed.Store(true)
	remote.afterGet = func(_ context.Context, key string) {
		if key == "k1" && armed.CompareAndSwap(true, false) {
			// Another caller loads k1 while GetMany reads. (Were GetMany
			// already leading k1, this Get would wait for it: hence the
			// deadline.)
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			v, err := layercache.Get(ctx, c, "k1", func(context.Context) (string, error) { return "from Get", nil })
			if err != nil || v != "from Get" {
				t.Errorf("Get(k1) = %q, %v", v, err)
			}
		}
	}
	var asked [][]string
	got, err := layercache.GetMany(ctx, c, []string{"k0", "k1"}, func(_ context.Context, missing []string) (map[string]string, error) {
		asked = append(asked, missing)
		out := map[string]string{}
		for _, k := range missing {
			out[k] = "from GetMany"
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || !slices.Equal(asked[0], []string{"k0"}) {
		t.Errorf("batch loads %v, want one of k0 alone", asked)
	}
	if got["k0"] != "from GetMany" || got["k1"] != "from Get" {
		t.Errorf("GetMany = %v", got)
	}
}

// A Set of a key that lands after GetMany read it, missing, but before
// GetMany joins its flight, is not overwritten by GetMany's load.
func TestGetMany_SetBetweenReadAndJoinIsKept(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, memoryOpts)
	remote := &hookLayer{byteLayer: newByteLayer()}
	c := newCache(t, []driver.Layer{mem, sharedHook{remote}}, slow)
	var armed atomic.Bool
	armed.Store(true)
	remote.afterGet = func(_ context.Context, key string) {
		if key == "k" && armed.CompareAndSwap(true, false) {
			must(t, layercache.Set(ctx, c, "k", "set"))
		}
	}
	got, err := layercache.GetMany(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
		return map[string]string{"k": "loaded"}, nil
	})
	if err != nil || got["k"] != "set" {
		t.Errorf("GetMany = %v, %v; want the Set's value, read again", got, err)
	}
	if v, ok, err := layercache.Lookup[string](ctx, c, "k"); v != "set" {
		t.Errorf("L1 after GetMany: %q, %v, %v; want the Set's value", v, ok, err)
	}
	other := newCache(t, []driver.Layer{sharedHook{remote}})
	if v, ok, err := layercache.Lookup[string](ctx, other, "k"); v != "set" {
		t.Errorf("the shared layer after GetMany: %q, %v, %v; want the Set's value", v, ok, err)
	}
}

// An invalidation of a key while GetMany reads it from a lower layer keeps
// the value read out of L1.
func TestGetMany_InvalidationDuringReadStopsBackfill(t *testing.T) {
	ctx := context.Background()
	mem := newMemory(t, memoryOpts)
	remote := &hookLayer{byteLayer: newByteLayer()}
	c := newCache(t, []driver.Layer{mem, sharedHook{remote}}, slow)
	must(t, layercache.Set(ctx, c, "k", "old"))
	must(t, mem.Delete(ctx, "k")) // in the remote layer only
	var armed atomic.Bool
	armed.Store(true)
	remote.afterGet = func(_ context.Context, key string) {
		if key == "k" && armed.CompareAndSwap(true, false) {
			must(t, c.Delete(ctx, "k")) // after the read, before the backfill
		}
	}
	if _, err := layercache.GetMany(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "new", nil })
	if err != nil || v != "new" {
		t.Fatalf("Get after the invalidation = %q, %v; want the loader's value, not the one read before it", v, err)
	}
}

// Keys the batch leaves out are cached as absent when negative caching is
// on, and are missing from the result.
func TestGetMany_AbsentKeysCachedAsAbsent(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	var asked [][]string
	batch := func(_ context.Context, missing []string) (map[string]string, error) {
		asked = append(asked, missing)
		return map[string]string{"a": "A"}, nil
	}
	for range 2 {
		got, err := layercache.GetMany(ctx, c, []string{"a", "ghost", "a"}, batch, layercache.WithNegativeTTL(time.Minute))
		if err != nil || len(got) != 1 || got["a"] != "A" {
			t.Fatalf("GetMany = %v, %v", got, err)
		}
	}
	if len(asked) != 1 || !slices.Equal(asked[0], []string{"a", "ghost"}) {
		t.Fatalf("batch calls %v, want one for a and ghost", asked)
	}
}

// SetMany writes Redis in one pipeline and the values are everyone's.
func TestSetMany_OnePipelinePerLayer(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	proxy := redistest.NewProxy(t, srv.Addr())
	client := redistest.ClientFor(t, proxy.Addr(), "")
	must(t, client.Ping(ctx).Err())
	l2, err := redis.New(redis.Options{Client: client, Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2})
	items := map[string]int{}
	for i := range 50 {
		items[fmt.Sprintf("k%d", i)] = i
	}
	before := proxy.UpstreamWrites()
	must(t, layercache.SetMany(ctx, c, items, layercache.WithTTL(time.Minute)))
	if n := proxy.UpstreamWrites() - before; n > 5 { // one pipeline, in a few TCP writes; a loop of Set would be 50
		t.Fatalf("SetMany of 50 keys took %d round trips to Redis", n)
	}
	other := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{})})
	for k, want := range items {
		if v, ok, err := layercache.Lookup[int](ctx, other, k); !ok || err != nil || v != want {
			t.Fatalf("%s in Redis = %v, %v, %v", k, v, ok, err)
		}
	}
}

// A bound loader's GetMany uses its batch function with ids.
func TestLoader_GetManyUsesBatchWithIDs(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	var asked []string
	users := layercache.NewLoader(c, "user:", func(context.Context, string) (string, error) {
		t.Error("the single load ran although a batch function is set")
		return "", nil
	}, layercache.WithBatch(func(_ context.Context, ids []string) (map[string]string, error) {
		asked = append(asked, ids...)
		out := map[string]string{}
		for _, id := range ids {
			if id != "9" {
				out[id] = "user " + id
			}
		}
		return out, nil
	}))
	got, err := users.GetMany(ctx, []string{"1", "2", "9"})
	if err != nil || len(got) != 2 || got["1"] != "user 1" || got["2"] != "user 2" {
		t.Fatalf("GetMany = %v, %v", got, err)
	}
	if !slices.Equal(asked, []string{"1", "2", "9"}) {
		t.Fatalf("batch asked for %v", asked)
	}
	if v, err := users.Get(ctx, "1"); err != nil || v != "user 1" {
		t.Fatalf("Get after GetMany = %q, %v", v, err)
	}
}

// A key of the wrong type in L1 fails GetMany, and leaves no other key of
// the batch waiting on a load that never ends.
func TestGetMany_TypeMismatchLeavesNoKeyWedged(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "b", 42))
	_, err := layercache.GetMany(ctx, c, []string{"a", "b"}, func(context.Context, []string) (map[string]string, error) {
		return nil, nil
	})
	if !errors.Is(err, layercache.ErrTypeMismatch) {
		t.Fatalf("GetMany over an int = %v, want ErrTypeMismatch", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := layercache.Get(ctx, c, "a", func(context.Context) (string, error) { return "A", nil })
	if err != nil || v != "A" {
		t.Fatalf("Get(a) after the failed GetMany = %q, %v", v, err)
	}
}

// The values a batch load writes to Redis before GetMany returns (no layer
// in process, or WithStrictWrites) go in one pipeline: a cold GetMany of
// 60 keys costs two round trips, the MGET and the pipeline.
func TestGetMany_StoresABatchLoadInOnePipeline(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	for _, stack := range []string{"redis", "memory+redis strict"} {
		t.Run(stack, func(t *testing.T) {
			proxy := redistest.NewProxy(t, srv.Addr())
			// One connection, so that every command shows at the proxy as
			// what it is, never among a new connection's handshake.
			client := goredis.NewClient(&goredis.Options{Addr: proxy.Addr(), PoolSize: 1, DisableIdentity: true, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = client.Close() })
			l2, err := redis.New(redis.Options{Client: client, Prefix: stack + ":"})
			must(t, err)
			layers, opts := []driver.Layer{l2}, []layercache.Option(nil)
			if stack != "redis" {
				layers = append([]driver.Layer{newMemory(t, memoryOpts)}, layers...)
				opts = append(opts, layercache.WithStrictWrites())
			}
			c := newCache(t, layers, opts...)
			// Handshakes are round trips of their own; go-redis dials
			// again for its first pipeline.
			must(t, client.Ping(ctx).Err())
			_, err = client.Pipelined(ctx, func(p goredis.Pipeliner) error { return p.Ping(ctx).Err() })
			must(t, err)
			proxy.Reset()

			keys := ids("k", 0, 60)
			got, err := layercache.GetMany(ctx, c, keys, func(_ context.Context, missing []string) (map[string]string, error) {
				out := map[string]string{}
				for _, k := range missing[:50] { // the last 10 are absent
					out[k] = "v:" + k
				}
				return out, nil
			}, layercache.WithNegativeTTL(time.Minute))
			if err != nil || len(got) != 50 {
				t.Fatalf("GetMany = %d values, %v", len(got), err)
			}
			if n := proxy.UpstreamWrites(); n != 2 {
				t.Errorf("%d round trips to Redis, want 2: the MGET and one pipeline of the writes", n)
			}
			// Another instance finds them all, the absences too.
			other := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{Prefix: stack + ":"})})
			again, err := layercache.GetMany(ctx, other, keys, func(context.Context, []string) (map[string]string, error) {
				t.Error("the other instance loaded: the batch was not stored")
				return nil, nil
			})
			if err != nil || len(again) != 50 || again["k7"] != "v:k7" {
				t.Fatalf("the other instance read %d values (k7 = %q), %v", len(again), again["k7"], err)
			}
		})
	}
}

// refusingLayer is a layer outside the process that refuses one key's
// entry (as one too large) and writes the others, in batches too.
type refusingLayer struct{ *hookLayer }

func (r refusingLayer) Set(ctx context.Context, key string, e *driver.Entry) error {
	if key == "big" {
		return fmt.Errorf("%w: too large", driver.ErrRefused)
	}
	return r.hookLayer.Set(ctx, key, e)
}

func (r refusingLayer) SetMany(ctx context.Context, keys []string, entries []*driver.Entry) error {
	var errs []error
	for i, k := range keys {
		if err := r.Set(ctx, k, entries[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// An invalidation of a key while a batch load writes it to a layer
// outside the process wins, at once: the loaded value does not stay there,
// also when the layer refuses another entry of the batch ("big").
func TestGetMany_InvalidationDuringBatchWriteTakesItBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		layer func(*hookLayer) driver.Layer
	}{
		{"shared layer", func(h *hookLayer) driver.Layer { return sharedHook{h} }},
		{"partly refused", func(h *hookLayer) driver.Layer { return refusingLayer{h} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			remote := &hookLayer{byteLayer: newByteLayer()}
			c := newCache(t, []driver.Layer{tc.layer(remote)}, slow)
			var armed atomic.Bool
			armed.Store(true)
			remote.onSet = func(_ context.Context, key string) error {
				if key == "k1" && armed.CompareAndSwap(true, false) {
					must(t, c.Delete(ctx, "k1")) // lands before the loaded value
				}
				return nil
			}
			got, err := layercache.GetMany(ctx, c, []string{"big", "k0", "k1"}, func(context.Context, []string) (map[string]string, error) {
				return map[string]string{"big": "x", "k0": "old", "k1": "old"}, nil
			})
			if err != nil || got["k1"] != "old" {
				t.Fatalf("GetMany = %v, %v", got, err)
			}
			if armed.Load() {
				t.Fatal("the batch load wrote nothing to the layer")
			}
			if e, _ := remote.byteLayer.Get(ctx, "k1"); e != nil {
				t.Errorf("k1 kept %q, loaded before its invalidation", e.Payload)
			}
			if e, _ := remote.byteLayer.Get(ctx, "k0"); e == nil {
				t.Error("k0, never invalidated, was not written")
			}
		})
	}
}
