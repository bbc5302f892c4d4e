package layercache_test

import (
	"context"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

// The L1 hit and its baseline, raw otter holding the same key and value
// with the same size bound and expiry policy as the memory layer, run in the
// same process so the claim "an L1 hit costs at most 1.5x a raw otter
// lookup" is a ratio of two numbers from one run.

var benchUser = user{ID: 42, Name: "ada", Roles: []string{"admin"}}

func BenchmarkL1Hit(b *testing.B) {
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	id := int64(42)
	if _, err := layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) { return benchUser, nil }, layercache.WithTTL(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			// A closure capturing locals, as real callers write it.
			u, err := layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) {
				return user{ID: id}, nil
			}, layercache.WithTTL(time.Hour))
			if err != nil || u.ID != 42 {
				b.Fatal(u, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				u, err := layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) {
					return user{ID: id}, nil
				}, layercache.WithTTL(time.Hour))
				if err != nil || u.ID != 42 {
					b.Fatal(u, err)
				}
			}
		})
	})
}

func BenchmarkOtterBaseline(b *testing.B) {
	cache := otter.Must(&otter.Options[string, user]{
		MaximumSize:      10_000,
		ExpiryCalculator: otter.ExpiryWriting[string, user](time.Hour),
	})
	defer cache.StopAllGoroutines()
	cache.Set("user:42", benchUser)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u, ok := cache.GetIfPresent("user:42")
			if !ok || u.ID != 42 {
				b.Fatal(u, ok)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				u, ok := cache.GetIfPresent("user:42")
				if !ok || u.ID != 42 {
					b.Fatal(u, ok)
				}
			}
		})
	})
}

func BenchmarkLookupL1Hit(b *testing.B) {
	c, _ := memCache(b)
	ctx := context.Background()
	if err := layercache.Set(ctx, c, "user:42", benchUser, layercache.WithTTL(time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if u, ok, err := layercache.Lookup[user](ctx, c, "user:42"); !ok || err != nil || u.ID != 42 {
			b.Fatal(u, ok, err)
		}
	}
}

// A bound loader's hit against Get's, in one benchmark so that the ratio
// comes from one run: each iteration does one of each and times them
// apart.
func BenchmarkLoaderHit(b *testing.B) {
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	users := layercache.NewLoader(c, "user:", func(context.Context, string) (user, error) { return benchUser, nil }, layercache.WithTTL(time.Hour))
	if _, err := users.Get(ctx, "42"); err != nil {
		b.Fatal(err)
	}
	id := int64(42)
	b.Run("interleaved", func(b *testing.B) {
		b.ReportAllocs()
		var loaderNs, getNs time.Duration
		for b.Loop() {
			t0 := time.Now()
			u, err := users.Get(ctx, "42")
			t1 := time.Now()
			v, err2 := layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) { return user{ID: id}, nil }, layercache.WithTTL(time.Hour))
			t2 := time.Now()
			if err != nil || err2 != nil || u.ID != 42 || v.ID != 42 {
				b.Fatal("not a hit")
			}
			loaderNs += t1.Sub(t0)
			getNs += t2.Sub(t1)
		}
		b.ReportMetric(float64(loaderNs)/float64(getNs), "loader/get")
	})
}

// An L1 hit of a fresh entry that has a stale-while-revalidate window,
// through Get and Lookup: the same fast path as BenchmarkL1Hit, plus a
// clock read.
func BenchmarkL1HitStaleWindow(b *testing.B) {
	c, _ := memCache(b)
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(time.Hour), layercache.WithStaleWhileRevalidate(time.Minute)}
	if err := layercache.Set(ctx, c, "user:42", benchUser, opts...); err != nil {
		b.Fatal(err)
	}
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			u, err := layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) { return user{}, nil }, opts...)
			if err != nil || u.ID != 42 {
				b.Fatal(u, err)
			}
		}
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if u, ok, err := layercache.Lookup[user](ctx, c, "user:42"); !ok || err != nil || u.ID != 42 {
				b.Fatal(u, ok, err)
			}
		}
	})
}
