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
