package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/layercache/layercache/driver"
)

// benchKeys is the working set of the Get benchmarks: small enough to stay
// in the cache, large enough that parallel readers spread over buckets.
const benchKeys = 1024

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	return keys
}

func benchEntry(i int) *driver.Entry {
	return &driver.Entry{
		Value:     i,
		ExpiresAt: time.Now().Add(time.Hour).UnixNano(),
		Tags:      []string{"users"},
	}
}

// BenchmarkGet measures a hit through the driver.Layer interface, the way
// the cache calls it. Compare with BenchmarkOtterGetIfPresent.
func BenchmarkGet(b *testing.B) {
	m, err := New(Options{TTL: time.Hour, MaxSize: 10 * benchKeys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	var l driver.Layer = m
	ctx := context.Background()
	keys := benchKeyNames()
	for i, k := range keys {
		if err := l.Set(ctx, k, benchEntry(i)); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if e, _ := l.Get(ctx, keys[i&(benchKeys-1)]); e == nil {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if e, _ := l.Get(ctx, keys[i&(benchKeys-1)]); e == nil {
					b.Fatal("miss")
				}
				i++
			}
		})
	})
}

// BenchmarkOtterGetIfPresent is the baseline of BenchmarkGet: raw otter
// bounded by size and with per-entry expiry, as the layer configures it, but
// on otter's default clock.
func BenchmarkOtterGetIfPresent(b *testing.B) {
	c, err := otter.New(&otter.Options[string, *driver.Entry]{
		MaximumSize: 10 * benchKeys,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(oe otter.Entry[string, *driver.Entry]) time.Duration {
			return time.Duration(oe.Value.ExpiresAt - oe.SnapshotAtNano)
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.StopAllGoroutines() })
	keys := benchKeyNames()
	for i, k := range keys {
		c.Set(k, benchEntry(i))
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := c.GetIfPresent(keys[i&(benchKeys-1)]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, ok := c.GetIfPresent(keys[i&(benchKeys-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	})
}
