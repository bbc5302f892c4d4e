package layercache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/viccon/sturdyc"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// redisOnlyBench starts a Redis server and returns a raw go-redis client of
// it and a cache whose only layer is that Redis, under the prefix "b:".
func redisOnlyBench(b *testing.B) (*goredis.Client, *layercache.Cache) {
	srv := redistest.Start(b)
	newClient := func() *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true,
			ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	l2, err := redis.New(redis.Options{Client: newClient(), Prefix: "b:", Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return newClient(), c
}

// BenchmarkGetMany100 reads 100 keys that are in Redis through GetMany on a
// cache whose only layer is Redis, next to a raw go-redis MGET of the same
// keys in the same loop (the ratio is the cost of the cache: envelopes,
// checksums, decoding, single-flight), and, as a peer figure, sturdyc's
// batch fetch of the same ids with an MGET as its fetch function. Each
// iteration asks for another 100 keys, so that neither cache answers from
// memory.
func BenchmarkGetMany100(b *testing.B) {
	ctx := context.Background()
	raw, c := redisOnlyBench(b)

	const groups, n = 200, 100
	keys := make([][]string, groups)
	items := map[string]string{}
	for g := range keys {
		for i := range n {
			k := fmt.Sprintf("k%d:%d", g, i)
			keys[g] = append(keys[g], k)
			items[k] = fmt.Sprintf("value of %s, about a hundred bytes long................................................", k)
		}
	}
	for batch := range chunks(items, 5_000) {
		must(b, layercache.SetMany(ctx, c, batch, layercache.WithTTL(time.Hour)))
	}
	full := func(ks []string) []string {
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = "b:" + k
		}
		return out
	}
	mustNotLoad := func(context.Context, []string) (map[string]string, error) {
		b.Fatal("GetMany loaded: the keys should all be in Redis")
		return nil, nil
	}

	b.Run("interleaved", func(b *testing.B) {
		b.ReportAllocs()
		var cacheNs, rawNs time.Duration
		for i := 0; b.Loop(); i++ {
			ks := keys[i%groups]
			fk := full(ks)
			// Each goes first every other time: the second read of a
			// group finds Redis's memory warm from the first.
			var got map[string]string
			var vals []any
			var err, err2 error
			cacheRead := func() {
				t0 := time.Now()
				got, err = layercache.GetMany(ctx, c, ks, mustNotLoad)
				cacheNs += time.Since(t0)
			}
			rawRead := func() {
				t0 := time.Now()
				vals, err2 = raw.MGet(ctx, fk...).Result()
				rawNs += time.Since(t0)
			}
			if i%2 == 0 {
				cacheRead()
				rawRead()
			} else {
				rawRead()
				cacheRead()
			}
			if err != nil || err2 != nil || len(got) != n || len(vals) != n {
				b.Fatal("a batch read failed")
			}
		}
		b.ReportMetric(float64(cacheNs)/float64(rawNs), "x-vs-mget")
	})

	b.Run("peer=sturdyc", func(b *testing.B) {
		b.ReportAllocs()
		// A capacity below one group's worth across the rotation keeps
		// every batch a fetch, as for the cache above.
		sc := sturdyc.New[string](n*groups/4, 4, time.Hour, 10)
		fetch := func(ctx context.Context, ids []string) (map[string]string, error) {
			vals, err := raw.MGet(ctx, full(ids)...).Result()
			if err != nil {
				return nil, err
			}
			out := make(map[string]string, len(ids))
			for i, v := range vals {
				if s, ok := v.(string); ok {
					out[ids[i]] = s
				}
			}
			return out, nil
		}
		for i := 0; b.Loop(); i++ {
			got, err := sturdyc.GetOrFetchBatch(ctx, sc, keys[i%groups], sc.BatchKeyFn("k"), fetch)
			if err != nil || len(got) != n {
				b.Fatal("a batch fetch failed")
			}
		}
	})
}

// BenchmarkGetManyCold loads 100 keys that no layer holds through GetMany
// on a cache whose only layer is Redis, next to what a program doing it by
// hand must do at least: an MGET that misses, then the 100 values written
// in one pipeline. Each iteration asks for new keys.
//
//	go test -run '^$' -bench GetManyCold -benchtime 1000x .
func BenchmarkGetManyCold(b *testing.B) {
	ctx := context.Background()
	raw, c := redisOnlyBench(b)
	const n = 100
	value := func(k string) string {
		return "value of " + k + ", about a hundred bytes long......................................"
	}
	load := func(_ context.Context, keys []string) (map[string]string, error) {
		out := make(map[string]string, len(keys))
		for _, k := range keys {
			out[k] = value(k)
		}
		return out, nil
	}
	round := 0 // across the runs of the sub-benchmark, so keys stay new
	b.Run("interleaved", func(b *testing.B) {
		b.ReportAllocs()
		var cacheNs, rawNs time.Duration
		for b.Loop() {
			round++
			keys := ids(fmt.Sprintf("cold%d:", round), 0, n)
			t0 := time.Now()
			got, err := layercache.GetMany(ctx, c, keys, load, layercache.WithTTL(time.Hour))
			cacheNs += time.Since(t0)
			if err != nil || len(got) != n {
				b.Fatal("GetMany failed", err)
			}
			full := make([]string, n)
			for j, k := range keys {
				full[j] = "raw" + k
			}
			t0 = time.Now()
			if _, err := raw.MGet(ctx, full...).Result(); err != nil {
				b.Fatal(err)
			}
			pipe := raw.Pipeline()
			for _, k := range full {
				pipe.Set(ctx, k, value(k), time.Hour)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			rawNs += time.Since(t0)
		}
		b.ReportMetric(float64(cacheNs)/float64(rawNs), "x-vs-mget+pipeline")
	})
}
