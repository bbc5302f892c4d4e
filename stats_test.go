package layercache_test

import (
	"context"
	"testing"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
)

// Every counter counts what it says, and ResetStats starts them again.
func TestStats_CountsEachKindAndResets(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, layercache.WithStrictWrites())
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "a", "1"))
	must(t, layercache.Set(ctx, c, "b", "2"))
	must(t, c.Delete(ctx, "a", "b"))
	must(t, c.InvalidateTags(ctx, "x", "y", "z"))
	must(t, c.Clear(ctx))
	must(t, c.Namespace("tenant").Clear(ctx))
	absent := func(context.Context) (string, error) { return "", layercache.ErrNotFound }
	for range 3 {
		_, _ = layercache.Get(ctx, c, "ghost", absent) // one load, then two negative hits
	}
	// A value only in L2 is backfilled into L1.
	must(t, layercache.Set(ctx, newCache(t, []driver.Layer{l2}), "deep", "v"))
	if getString(t, c, "deep", "unexpected load") != "v" {
		t.Fatal("setup: deep should come from L2")
	}

	s := c.Stats()
	for name, got := range map[string][2]uint64{
		"Sets":               {s.Sets, 2},
		"DeletedKeys":        {s.DeletedKeys, 2},
		"InvalidatedTags":    {s.InvalidatedTags, 3},
		"Clears":             {s.Clears, 1},
		"NamespaceRotations": {s.NamespaceRotations, 1},
		"NotFound":           {s.NotFound, 1},
		"NegativeHits":       {s.NegativeHits, 2},
		"Backfills":          {s.Backfills, 1},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %d, want %d", name, got[0], got[1])
		}
	}
	remote := s.Layers[1]
	if remote.P50 == 0 || remote.P50 > remote.P95 || remote.P95 > remote.P99 || remote.MeanLatency == 0 {
		t.Errorf("latencies of the remote layer: mean %v, p50 %v, p95 %v, p99 %v", remote.MeanLatency, remote.P50, remote.P95, remote.P99)
	}
	if s.Layers[0].P50 != 0 {
		t.Errorf("an in-process layer reports a latency: %v", s.Layers[0].P50)
	}

	c.ResetStats()
	s = c.Stats()
	if s.Sets != 0 || s.NegativeHits != 0 || s.Layers[1].Hits != 0 || s.Layers[1].P99 != 0 || s.Backfills != 0 {
		t.Fatalf("after ResetStats: %+v", s)
	}
	must(t, layercache.Set(ctx, c, "a", "1"))
	if s := c.Stats(); s.Sets != 1 || s.Layers[1].P50 == 0 {
		t.Fatalf("counting after a reset: Sets %d, p50 %v", s.Sets, s.Layers[1].P50)
	}
}
