package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
)

// No more loads run at once than the cache-wide limit allows.
func TestOriginLimit_BoundsConcurrentLoads(t *testing.T) {
	c, _ := memCache(t, layercache.WithOriginLimit(layercache.OriginLimit{Concurrent: 2}))
	ctx := context.Background()
	var running, most atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = layercache.Get(ctx, c, fmt.Sprintf("k%d", i), func(context.Context) (int, error) {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				running.Add(-1)
				return i, nil
			})
		}()
	}
	eventually(t, "two loads to run", func() bool { return running.Load() == 2 })
	time.Sleep(20 * time.Millisecond) // room for a third to start, were it allowed
	close(release)
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Fatalf("%d loads ran at once, want at most 2", m)
	}
	if n := c.Stats().Loads; n != 10 {
		t.Fatalf("%d loads, want all 10 eventually", n)
	}
}

// A load that cannot get a token before its caller's deadline fails with
// the deadline, and gets the stale value under stale-if-error.
func TestOriginLimit_RateLimitedLoadRespectsDeadline(t *testing.T) {
	c, _ := memCache(t, layercache.WithOriginLimit(layercache.OriginLimit{PerSecond: 0.1, Burst: 1}))
	ctx := context.Background()
	if _, err := layercache.Get(ctx, c, "a", func(context.Context) (string, error) { return "a", nil }); err != nil {
		t.Fatal(err) // the burst's one token
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := layercache.Get(short, c, "b", func(context.Context) (string, error) {
		t.Error("a load ran past the rate limit")
		return "", nil
	})
	if err == nil {
		t.Fatal("a load beyond the rate limit succeeded")
	}
}

// A bound loader whose origin keeps failing fails fast, and serves stale
// values under stale-if-error, instead of calling the origin again.
func TestOriginBreaker_FailsFastAfterRepeatedFailures(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	var calls atomic.Int32
	var down atomic.Bool
	users := layercache.NewLoader(c, "user:", func(_ context.Context, id string) (string, error) {
		calls.Add(1)
		if down.Load() {
			return "", errors.New("origin down")
		}
		return "user " + id, nil
	}, layercache.WithOriginBreaker(3, time.Hour), layercache.WithTTL(10*time.Millisecond), layercache.WithStaleIfError(time.Hour))
	if _, err := users.Get(ctx, "cached"); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	for i := range 3 {
		if _, err := users.Get(ctx, fmt.Sprintf("new%d", i)); err == nil || errors.Is(err, layercache.ErrOriginUnavailable) {
			t.Fatalf("failure %d: %v, want the origin's own error", i, err)
		}
	}
	before := calls.Load()
	if _, err := users.Get(ctx, "new9"); !errors.Is(err, layercache.ErrOriginUnavailable) {
		t.Fatalf("after 3 failures: %v, want ErrOriginUnavailable", err)
	}
	time.Sleep(20 * time.Millisecond) // "cached" is stale now
	if v, err := users.Get(ctx, "cached"); err != nil || v != "user cached" {
		t.Fatalf("stale-if-error with the breaker open: %q, %v", v, err)
	}
	if calls.Load() != before {
		t.Fatal("the origin was called while the breaker was open")
	}
}
