package layercache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/internal/redistest"
)

// A prefix invalidation on one instance reaches Redis and every instance's
// memory, and only the keys under the prefix.
func TestInvalidatePrefix_ReachesEveryLayerAndInstance(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := busInstance(t, srv.Client(t))
	b := busInstance(t, srv.Client(t))
	for _, k := range []string{"user:1", "user:2", "order:1"} {
		must(t, layercache.Set(ctx, a, k, "old"))
		if getString(t, b, k, "unexpected load") != "old" {
			t.Fatal("setup: b should hold " + k)
		}
	}
	must(t, a.InvalidatePrefix(ctx, "user:"))
	for _, k := range []string{"user:1", "user:2"} {
		if got := lookupString(t, a, k); got != "<miss>" {
			t.Errorf("a still has %s = %s", k, got)
		}
		eventually(t, "b to drop "+k, func() bool { return lookupString(t, b, k) == "<miss>" })
	}
	if got := lookupString(t, b, "order:1"); got != "old" {
		t.Errorf("a key outside the prefix was removed: %s", got)
	}
	// On a view, the prefix is within the namespace.
	tenant := a.Namespace("tenant")
	must(t, layercache.Set(ctx, tenant, "order:1", "tenant's"))
	must(t, tenant.InvalidatePrefix(ctx, ""))
	if lookupString(t, tenant, "order:1") != "<miss>" || lookupString(t, a, "order:1") != "old" {
		t.Fatal("a view's prefix invalidation went outside its namespace, or missed inside it")
	}
}

// Soft expiry leaves the entries servable as stale while one load renews
// them, on every instance; a load that fails keeps them served.
func TestExpire_EntriesServedStaleWhileOneLoadRuns(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := busInstance(t, srv.Client(t))
	b := busInstance(t, srv.Client(t))
	opts := []layercache.EntryOption{layercache.WithTTL(time.Hour), layercache.WithStaleWhileRevalidate(time.Hour), layercache.WithStaleIfError(time.Hour)}
	for _, k := range []string{"k", "tagged", "pre:1"} {
		must(t, layercache.Set(ctx, a, k, "old", append(opts, layercache.WithTags("t-"+k))...))
		if getString(t, b, k, "unexpected load") != "old" {
			t.Fatal("setup: b should hold " + k)
		}
	}
	must(t, a.Expire(ctx, "k"))
	must(t, a.ExpireTags(ctx, "t-tagged"))
	must(t, a.ExpirePrefix(ctx, "pre:"))
	failing := func(context.Context) (string, error) { return "", errors.New("origin down") }
	for _, k := range []string{"k", "tagged", "pre:1"} {
		for name, c := range map[string]*layercache.Cache{"a": a, "b": b} {
			eventually(t, name+" to see "+k+" stale", func() bool { return lookupString(t, c, k) == "<miss>" })
			// Stale, not gone: a failing load still serves it.
			if v, err := layercache.Get(ctx, c, k, failing, opts...); err != nil || v != "old" {
				t.Fatalf("%s: Get of soft-expired %s with a failing origin = %q, %v", name, k, v, err)
			}
		}
	}
	// A load renews it.
	if v := getString(t, a, "k", "new"); v != "new" {
		t.Fatalf("after the refresh Get = %q", v)
	}
	if got := lookupString(t, a, "k"); got != "new" {
		t.Fatalf("the refreshed value is not fresh: %s", got)
	}
}

// An intersection of tags removes exactly the entries carrying all of them,
// on every instance.
func TestInvalidateAllTags_RemovesTheIntersectionEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := busInstance(t, srv.Client(t))
	b := busInstance(t, srv.Client(t))
	tagged := map[string][]string{"both": {"user:7", "region:eu"}, "user": {"user:7"}, "region": {"region:eu"}}
	for k, tags := range tagged {
		must(t, layercache.Set(ctx, a, k, "v", layercache.WithTags(tags...)))
		if getString(t, b, k, "unexpected load") != "v" {
			t.Fatal("setup: b should hold " + k)
		}
	}
	must(t, a.InvalidateAllTags(ctx, "user:7", "region:eu"))
	for _, c := range []*layercache.Cache{a, b} {
		eventually(t, "both to go", func() bool { return lookupString(t, c, "both") == "<miss>" })
		for _, k := range []string{"user", "region"} {
			if got := lookupString(t, c, k); got != "v" {
				t.Errorf("%s carrying one of the tags was removed", k)
			}
		}
	}
	if n := srv.Client(t).Exists(ctx, "test:both", "test:user", "test:region").Val(); n != 2 {
		t.Fatalf("Redis holds %d of the 3 keys, want the 2 outside the intersection", n)
	}
}
