package layercache_test

import (
	"context"
	"strings"
	"testing"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// Views keep their keys and tags apart, and nest.
func TestNamespace_KeepsKeysAndTagsApart(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	a, b := c.Namespace("tenant:1"), c.Namespace("tenant:2")
	nested := a.Namespace("team:7")
	for view, v := range map[*layercache.Cache]string{c: "root", a: "a", b: "b", nested: "nested"} {
		must(t, layercache.Set(ctx, view, "k", v, layercache.WithTags("t")))
	}
	must(t, a.InvalidateTags(ctx, "t"))
	for view, want := range map[*layercache.Cache]string{c: "root", a: "<miss>", b: "b", nested: "nested"} {
		if got := lookupString(t, view, "k"); got != want {
			t.Errorf("after InvalidateTags on one view, k = %s, want %s", got, want)
		}
	}
	must(t, b.Delete(ctx, "k"))
	if got := lookupString(t, c, "k"); got != "root" {
		t.Errorf("Delete on a view reached the cache's own key: %s", got)
	}
	// A name that looks like a nested path is not one.
	must(t, layercache.Set(ctx, c.Namespace("tenant:1@0/5:team:7"), "k", "impostor"))
	if got := lookupString(t, nested, "k"); got != "nested" {
		t.Errorf("a crafted namespace name reached another view's key: %s", got)
	}
}

// Rotate on one instance makes the other miss on its next read, without
// scanning a key; Clear on a view touches only that view.
func TestNamespace_RotateReachesEveryInstanceWithoutScan(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := busInstance(t, srv.Client(t))
	b := busInstance(t, srv.Client(t))
	tenantA, tenantB := a.Namespace("tenant:42"), b.Namespace("tenant:42")

	must(t, layercache.Set(ctx, tenantA, "k", "old"))
	must(t, layercache.Set(ctx, a, "k", "outside"))
	if v := getString(t, tenantB, "k", "unexpected load"); v != "old" {
		t.Fatalf("b read %q in the namespace, want the value a wrote", v)
	}

	raw := srv.Client(t)
	scans := func() int64 {
		info := raw.Info(ctx, "commandstats").Val()
		var n int64
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_scan:") || strings.HasPrefix(line, "cmdstat_keys:") {
				n++
			}
		}
		return n
	}
	before := scans()
	received := b.Stats().BusReceived
	must(t, tenantA.Rotate(ctx))
	eventually(t, "b to hear of the rotation", func() bool { return b.Stats().BusReceived > received })
	if v := getString(t, tenantB, "k", "new"); v != "new" {
		t.Fatalf("after a rotation on a, b read %q in the namespace", v)
	}
	if v := getString(t, a, "k", "unexpected load"); v != "outside" {
		t.Fatalf("a rotation reached a key outside the namespace: %q", v)
	}
	if scans() != before {
		t.Fatal("the rotation scanned keys")
	}

	// A new instance learns the generation from Redis.
	c := busInstance(t, srv.Client(t))
	if got := lookupString(t, c.Namespace("tenant:42"), "k"); got != "new" {
		t.Fatalf("a new instance read %s, want the value of the current generation", got)
	}

	// Clear on the view is a rotation: the namespace only.
	must(t, layercache.Set(ctx, tenantA, "k2", "v"))
	must(t, tenantA.Clear(ctx))
	if got := lookupString(t, tenantA, "k2"); got != "<miss>" {
		t.Fatalf("Clear on the view left k2 = %s", got)
	}
	if got := lookupString(t, a, "k"); got != "outside" {
		t.Fatalf("Clear on the view reached the cache's own key: %s", got)
	}
	if err := a.Rotate(ctx); err == nil {
		t.Fatal("Rotate on a cache that is not a view succeeded")
	}
}

// Generations keep growing when Redis loses them (a restart without
// persistence, a flush): a rotation after the loss still moves the
// namespace past the generation this instance knows.
func TestNamespace_RotateAfterRedisLostGenerations(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c := newCache(t, []driver.Layer{newRedisLayer(t, srv, redis.Options{})})
	view := c.Namespace("tenant")
	must(t, view.Rotate(ctx)) // this instance now knows a generation past the first
	must(t, srv.Client(t).FlushAll(ctx).Err())
	must(t, layercache.Set(ctx, view, "k", "before the rotation"))
	must(t, view.Rotate(ctx))
	if got := lookupString(t, view, "k"); got != "<miss>" {
		t.Fatalf("after a rotation, k = %s: the generation went back to one already used", got)
	}
}
