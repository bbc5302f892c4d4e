package layercache_test

import (
	"context"
	"testing"
	"time"

	"github.com/layercache/layercache"
)

// A key read often is stored for longer than one read once, up to the cap.
func TestAdaptiveTTL_HotKeysLiveLonger(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(time.Minute), layercache.WithAdaptiveTTL(time.Hour)}
	load := func(context.Context) (string, error) { return "v", nil }
	for range 100 {
		if _, err := layercache.Get(ctx, c, "hot", load, opts...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := layercache.Get(ctx, c, "cold", load, opts...); err != nil {
		t.Fatal(err)
	}
	// Reload both: the hot one is stored with a longer lifetime.
	must(t, c.Delete(ctx, "hot", "cold"))
	for _, k := range []string{"hot", "cold"} {
		if _, err := layercache.Get(ctx, c, k, load, opts...); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func(key string) time.Duration {
		got, err := c.Inspect(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return got[0].StaleIn
	}
	hot, cold := fresh("hot"), fresh("cold")
	if cold > 2*time.Minute {
		t.Errorf("a key read twice lives %v, want about the base minute (or two)", cold)
	}
	if hot < 32*time.Minute || hot > time.Hour {
		t.Errorf("a key read 101 times lives %v, want 64 minutes capped at the hour", hot)
	}
}

// A read slides the freshness of an entry written with a sliding TTL, but
// never past its maximum lifetime.
func TestSlidingTTL_ReadsExtendUpToMax(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	failing := func(context.Context) (string, error) { return "", context.Canceled }
	staleIn := func(key string) time.Duration {
		got, err := c.Inspect(ctx, key)
		if err != nil || !got[0].Present {
			t.Fatalf("Inspect(%s): %+v, %v", key, got, err)
		}
		return got[0].StaleIn
	}
	slidingFor := func(max time.Duration) layercache.EntryOption {
		return layercache.WithSlidingTTL(200*time.Millisecond, max)
	}
	must(t, layercache.Set(ctx, c, "long", "v", slidingFor(time.Hour)))
	must(t, layercache.Set(ctx, c, "short", "v", slidingFor(250*time.Millisecond)))
	time.Sleep(120 * time.Millisecond) // less than half the window is left
	for _, k := range []string{"long", "short"} {
		if v, err := layercache.Get(ctx, c, k, failing, slidingFor(map[string]time.Duration{"long": time.Hour, "short": 250 * time.Millisecond}[k])); err != nil || v != "v" {
			t.Fatalf("Get(%s) = %q, %v: the entry should still be fresh", k, v, err)
		}
	}
	if d := staleIn("long"); d < 150*time.Millisecond {
		t.Errorf("after a read, long is fresh for %v more, want the window (200ms) again", d)
	}
	if d := staleIn("short"); d > 131*time.Millisecond {
		t.Errorf("short is fresh for %v more, past its 250ms maximum", d)
	}
}
