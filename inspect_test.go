package layercache_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/disk"
	"github.com/layercache/layercache/drivers/memcached"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/memcachedtest"
	"github.com/layercache/layercache/internal/redistest"
)

// Inspect reports what every kind of layer holds, and copies nothing up.
func TestInspect_EveryLayerKind(t *testing.T) {
	srv := redistest.Start(t)
	mc := memcachedtest.Start(t)
	d, err := disk.New(disk.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := memcached.New(memcached.Options{Addrs: []string{mc.Addr()}, Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), newRedisLayer(t, srv, redis.Options{}), m, d}, layercache.WithStrictWrites())
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "k", benchUser, layercache.WithTTL(time.Hour), layercache.WithStaleWhileRevalidate(time.Hour), layercache.WithTags("users")))

	got, err := c.Inspect(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if names := len(got); names != 4 {
		t.Fatalf("%d layers reported", names)
	}
	for _, le := range got {
		if !le.Present || !le.Fresh || le.Err != "" || !slices.Equal(le.Tags, []string{"users"}) {
			t.Errorf("%s: %+v", le.Layer, le)
		}
		if le.TTL < time.Hour || le.TTL > 2*time.Hour || le.StaleIn > time.Hour || le.StaleIn < 59*time.Minute {
			t.Errorf("%s: TTL %v, stale in %v", le.Layer, le.TTL, le.StaleIn)
		}
	}
	if got[0].Type != "layercache_test.user" || got[0].Size != 0 {
		t.Errorf("memory: %+v", got[0])
	}
	for _, le := range got[1:] {
		if le.Codec != "json" || le.Size == 0 {
			t.Errorf("%s: codec %q, size %d", le.Layer, le.Codec, le.Size)
		}
	}

	// Only in Redis: reported there, and not copied into memory.
	must(t, layercache.Set(ctx, newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{})}), "deep", "v"))
	for range 2 {
		got, _ = c.Inspect(ctx, "deep")
		if got[0].Present || !got[1].Present || got[2].Present || got[3].Present {
			t.Fatalf("deep: %+v", got)
		}
	}
	// A failing layer says so.
	srv.Kill()
	got, _ = c.Inspect(ctx, "k")
	if got[1].Present || !strings.Contains(got[1].Err, "redis") {
		t.Fatalf("killed Redis: %+v", got[1])
	}
}
