package memory

import (
	"context"
	"slices"
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

// newRawOtter is the baseline of the layer: raw otter bounded by size and
// with per-entry expiry, as the layer configures it, but on otter's default
// executor.
func newRawOtter(b *testing.B) *otter.Cache[string, *driver.Entry] {
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
	return c
}

// BenchmarkOtterGetIfPresent is the baseline of BenchmarkGet (see
// newRawOtter).
func BenchmarkOtterGetIfPresent(b *testing.B) {
	c := newRawOtter(b)
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

// BenchmarkSparseGet is a hit in a process that is mostly idle, as most
// services are most of the time: each read follows a pause in which no
// goroutine runs. It reports the read alone, in get-ns, for the layer and
// for raw otter as the layer configures it but with otter's default
// executor, which starts a goroutine for every maintenance run and so
// wakes an idle processor's thread about once every 16 reads. get-ns is
// the mean, p99-ns the 99th percentile.
//
//	go test -run '^$' -bench SparseGet -count 5 ./drivers/memory
func BenchmarkSparseGet(b *testing.B) {
	keys := benchKeyNames()
	m, err := New(Options{TTL: time.Hour, MaxSize: 10 * benchKeys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	raw := newRawOtter(b)
	ctx := context.Background()
	for i, k := range keys {
		if err := m.Set(ctx, k, benchEntry(i)); err != nil {
			b.Fatal(err)
		}
		raw.Set(k, benchEntry(i))
	}
	for _, c := range []struct {
		name string
		get  func(key string) bool
	}{
		{"layer", func(k string) bool { e, _ := m.Get(ctx, k); return e != nil }},
		{"otter-default-executor", func(k string) bool { _, ok := raw.GetIfPresent(k); return ok }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var spent time.Duration
			took := make([]time.Duration, 0, b.N)
			for i := range b.N {
				time.Sleep(50 * time.Microsecond)
				start := time.Now()
				ok := c.get(keys[i&7])
				d := time.Since(start)
				spent += d
				took = append(took, d)
				if !ok {
					b.Fatal("miss")
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "get-ns")
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
