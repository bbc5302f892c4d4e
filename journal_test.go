package layercache_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// quickRecovery notices an outage at the first failure and probes again
// soon after.
var quickRecovery = layercache.WithDegradation(layercache.Degradation{
	Timeout: 100 * time.Millisecond, FailureThreshold: 1, RetryAfter: 100 * time.Millisecond,
})

// busInstance is one instance of an application: memory over the Redis
// reached through client, with a Redis bus on it.
func busInstance(t *testing.T, client goredis.UniversalClient, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	bus, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "journal"})
	if err != nil {
		t.Fatal(err)
	}
	return redisStack(t, client, redis.Options{Timeout: 100 * time.Millisecond},
		append([]layercache.Option{layercache.WithBus(bus), layercache.WithNamespace("journal"), quickRecovery, layercache.WithStrictWrites()}, opts...)...)
}

func getString(t *testing.T, c *layercache.Cache, key, load string) string {
	t.Helper()
	v, err := layercache.Get(context.Background(), c, key, func(context.Context) (string, error) { return load, nil })
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

// A Delete and a tag invalidation made while Redis is away reach it once it
// is back; meanwhile the instance that made them never reads the old values.
func TestJournal_InvalidationsSurviveOutage(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := busInstance(t, srv.Client(t))
	b := busInstance(t, srv.Client(t))

	must(t, layercache.Set(ctx, a, "k", "old"))
	must(t, layercache.Set(ctx, a, "tagged", "old", layercache.WithTags("t")))
	if getString(t, b, "k", "unexpected load") != "old" || getString(t, b, "tagged", "unexpected load") != "old" {
		t.Fatal("setup: b should read the values a wrote")
	}

	srv.Pause()
	if err := a.Delete(ctx, "k"); err == nil {
		t.Fatal("Delete with Redis paused reported no error")
	}
	if err := a.InvalidateTags(ctx, "t"); err == nil {
		t.Fatal("InvalidateTags with Redis paused reported no error")
	}
	if n := a.Stats().JournalPending; n != 2 {
		t.Fatalf("JournalPending = %d, want 2 (the key and the tag)", n)
	}
	// a never serves the old values, during the outage...
	if v := getString(t, a, "k", "new"); v != "new" {
		t.Fatalf("a read %q during the outage", v)
	}
	if v := getString(t, a, "tagged", "new"); v != "new" {
		t.Fatalf("a read %q for the invalidated tag during the outage", v)
	}
	srv.Resume()

	// ...nor after, before or after the journal is replayed.
	eventually(t, "the journal to be replayed", func() bool {
		if v := getString(t, a, "k", "new"); v != "new" {
			t.Fatalf("a read %q after Redis came back", v)
		}
		return a.Stats().JournalPending == 0
	})
	if s := a.Stats(); s.JournalReplayed != 2 || s.JournalLost != 0 {
		t.Fatalf("JournalReplayed = %d, JournalLost = %d; want 2, 0", s.JournalReplayed, s.JournalLost)
	}
	// b hears of both (its in-process copies go) and Redis no longer has
	// the old values.
	eventually(t, "b to read the new values", func() bool {
		return getString(t, b, "k", "new") == "new" && getString(t, b, "tagged", "new") == "new"
	})
	raw := srv.Client(t)
	for _, key := range []string{"test:k", "test:tagged"} {
		if v := raw.Get(ctx, key).Val(); v != "" && !containsNew(v) {
			t.Fatalf("Redis still holds the old value under %s", key)
		}
	}
}

func containsNew(raw string) bool {
	for i := 0; i+3 <= len(raw); i++ {
		if raw[i:i+3] == "new" {
			return true
		}
	}
	return false
}

// A replay cut short by a Redis restart resumes where it stopped.
func TestJournal_ReplaySurvivesRestart(t *testing.T) {
	// Redis keeps its data across the restart, so that what the replay had
	// not removed yet is still there when it comes back.
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	ctx := context.Background()
	raw := srv.Client(t)
	// The instance reaches Redis through a proxy that slows every command,
	// so that the replay is still running when Redis restarts.
	proxy := redistest.NewProxy(t, srv.Addr())
	a := busInstance(t, redistest.ClientFor(t, proxy.Addr(), ""))

	const n = 1000
	keys := make([]string, n)
	pipe := raw.Pipeline()
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		pipe.Set(ctx, "test:"+keys[i], "old", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	// The outage: nothing reaches Redis (a paused Redis would still run
	// the timed-out DEL once resumed).
	proxy.SetBlackHole(true)
	if err := a.Delete(ctx, keys...); err == nil {
		t.Fatal("Delete with Redis unreachable reported no error")
	}
	if p := a.Stats().JournalPending; p != n {
		t.Fatalf("JournalPending = %d, want %d", p, n)
	}
	proxy.SetDelay(20*time.Millisecond, 0)
	proxy.SetBlackHole(false)
	var left int64
	eventually(t, "the replay to start", func() bool {
		left = raw.DBSize(ctx).Val()
		return left < n
	})
	if left == 0 {
		t.Fatal("setup: the replay ended before Redis restarted; slow the proxy down")
	}
	srv.Restart() // the replay's next command fails; the rest stays journaled
	proxy.SetDelay(0, 0)
	eventually(t, "the journal to be replayed", func() bool { return a.Stats().JournalPending == 0 })
	if left := raw.DBSize(ctx).Val(); left != 0 {
		t.Fatalf("%d of the deleted keys are still in Redis after the replay", left)
	}
	if lost := a.Stats().JournalLost; lost != 0 {
		t.Fatalf("JournalLost = %d", lost)
	}
}

// A journal that is full counts the loss and drops the in-process layers.
func TestJournal_OverflowDropsInProcessLayersAndCounts(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := busInstance(t, srv.Client(t), layercache.WithJournalSize(3))
	must(t, layercache.Set(ctx, a, "held", "old"))

	srv.Pause()
	defer srv.Resume()
	for i := range 5 {
		_ = a.Delete(ctx, fmt.Sprintf("k%d", i))
	}
	s := a.Stats()
	if s.JournalPending != 3 || s.JournalLost != 2 {
		t.Fatalf("JournalPending = %d, JournalLost = %d; want 3 kept and 2 lost", s.JournalPending, s.JournalLost)
	}
	// The in-process copy of an unrelated key went too: after a lost
	// invalidation this instance no longer trusts what it holds.
	if v := getString(t, a, "held", "reloaded"); v != "reloaded" {
		t.Fatalf("Get(held) = %q from L1 after the journal overflowed", v)
	}
	// Once per overflow, not per lost change: memory keeps what it loads
	// while the journal stays full.
	_ = a.Delete(ctx, "k9")
	if v := getString(t, a, "held", "reloaded again"); v != "reloaded" {
		t.Fatalf("Get(held) = %q: memory was dropped again by a second lost change", v)
	}
	if lost := a.Stats().JournalLost; lost != 3 {
		t.Fatalf("JournalLost = %d, want 3", lost)
	}
}

// failingInvalidations is a shared layer that reads and writes but fails
// every removal while failing is set.
type failingInvalidations struct {
	*byteLayer
	failing atomic.Bool
}

func (f *failingInvalidations) Shared() {}

func (f *failingInvalidations) Delete(ctx context.Context, keys ...string) error {
	if f.failing.Load() {
		return errDown
	}
	return f.byteLayer.Delete(ctx, keys...)
}

func (f *failingInvalidations) InvalidateTags(ctx context.Context, tags ...string) error {
	if f.failing.Load() {
		return errDown
	}
	return f.byteLayer.InvalidateTags(ctx, tags...)
}

// Until a journaled removal is replayed, reads skip the layer it failed on
// for that key or tag, and only for that key or tag.
func TestJournal_ReadsSkipLayerUntilReplayed(t *testing.T) {
	l2 := &failingInvalidations{byteLayer: newByteLayer()}
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, slow)
	ctx := context.Background()
	for _, key := range []string{"k", "tagged", "other"} {
		must(t, layercache.Set(ctx, c, key, "old", layercache.WithTags("tag-of-"+key)))
	}
	l2.failing.Store(true)
	if err := c.Delete(ctx, "k"); err == nil {
		t.Fatal("Delete reported no error")
	}
	if err := c.InvalidateTags(ctx, "tag-of-tagged"); err == nil {
		t.Fatal("InvalidateTags reported no error")
	}
	for key, want := range map[string]string{"k": "loaded", "tagged": "loaded"} {
		if v := getString(t, c, key, "loaded"); v != want {
			t.Errorf("Get(%s) = %q: read the old value from the layer whose removal failed", key, v)
		}
	}
	if !l2.has("k") || !l2.has("tagged") {
		t.Fatal("setup: the layer should still hold the old values")
	}
	l2.failing.Store(false)
	eventually(t, "the journal to be replayed", func() bool { return c.Stats().JournalPending == 0 })
	direct := newCache(t, []driver.Layer{l2})
	for _, key := range []string{"k", "tagged"} {
		if v := lookupString(t, direct, key); v == "old" {
			t.Errorf("the layer still holds the old %s after the replay", key)
		}
	}
	if v := lookupString(t, direct, "other"); v != "old" {
		t.Errorf("a key nobody invalidated is %s", v)
	}
}
