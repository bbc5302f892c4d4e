package layercache_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/disk"
)

// BenchmarkMemoryDiskStack is the embedded stack, memory over disk, with no
// Redis: an L1 hit, an L3 hit (L1 emptied before each read, so it includes
// the backfill) and a cold miss whose loader returns at once, so the miss
// measures the cache's own work: a disk read that misses, the load, the L1
// write and the disk write (strict writes, so that the write is timed
// rather than queued).
// The raw nutsdb read of the same bytes is BenchmarkNutsdbGet in
// drivers/disk, beside the disk layer's own.
func BenchmarkMemoryDiskStack(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("layercache"), 100) // 1000 bytes
	newStack := func(b *testing.B) (*layercache.Cache, driver.Layer) {
		l1 := newMemory(b, memoryOpts)
		l3, err := disk.New(disk.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		c, err := layercache.New([]driver.Layer{l1, l3}, layercache.WithStrictWrites())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c, l1
	}
	fail := func(context.Context) ([]byte, error) { return nil, fmt.Errorf("unexpected load") }

	b.Run("hit=L1", func(b *testing.B) {
		c, _ := newStack(b)
		if err := layercache.Set(ctx, c, "k", value, layercache.WithTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if v, err := layercache.Get(ctx, c, "k", fail); err != nil || len(v) != len(value) {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit=L3", func(b *testing.B) {
		c, l1 := newStack(b)
		if err := layercache.Set(ctx, c, "k", value, layercache.WithTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_ = l1.Delete(ctx, "k")
			if v, err := layercache.Get(ctx, c, "k", fail); err != nil || len(v) != len(value) {
				b.Fatal(err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		c, _ := newStack(b)
		load := func(context.Context) ([]byte, error) { return value, nil }
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := layercache.Get(ctx, c, fmt.Sprint("cold", i), load, layercache.WithTTL(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
