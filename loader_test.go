package layercache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// slowOrigin is a load function whose calls after the first block until
// released, and count.
type slowOrigin struct {
	calls   atomic.Int64
	release chan struct{}
	value   atomic.Value
	fail    atomic.Bool
}

func newSlowOrigin(v string) *slowOrigin {
	o := &slowOrigin{release: make(chan struct{})}
	o.value.Store(v)
	return o
}

func (o *slowOrigin) load(ctx context.Context, id string) (string, error) {
	if o.calls.Add(1) > 1 {
		select {
		case <-o.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	if o.fail.Load() {
		return "", errors.New("origin down")
	}
	return o.value.Load().(string) + ":" + id, nil
}

// With a bound loader every caller of a stale key, in L1 or only in Redis,
// gets the stale value without waiting, and one refresh runs in the
// background.
func TestLoader_StaleServedToEveryCallerWhileOneBackgroundRefreshRuns(t *testing.T) {
	srv := redistest.Start(t)
	for name, memTTL := range map[string]time.Duration{"stale in L1": time.Hour, "stale only in Redis": 10 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			l1 := newMemory(t, memory.Options{MaxSize: 100, TTL: memTTL})
			c := newCache(t, []driver.Layer{l1, newRedisLayer(t, srv, redis.Options{Prefix: name + ":"})}, layercache.WithStrictWrites())
			origin := newSlowOrigin("old")
			users := layercache.NewLoader(c, "user:", origin.load,
				layercache.WithTTL(50*time.Millisecond), layercache.WithStaleWhileRevalidate(time.Hour))
			ctx := context.Background()
			if v, err := users.Get(ctx, "1"); err != nil || v != "old:1" {
				t.Fatal(v, err)
			}
			time.Sleep(80 * time.Millisecond) // stale now (and gone from L1 in the second case)
			origin.value.Store("new")

			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if v, err := users.Get(wctx, "1"); err != nil || v != "old:1" {
						errs <- errors.New("a caller got " + v + " / " + errString(err))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err) // the refresh is blocked: anyone who waited for it timed out
			}
			eventually(t, "the background refresh to call the origin", func() bool { return origin.calls.Load() >= 2 })
			close(origin.release)
			eventually(t, "the background refresh to land", func() bool {
				v, _ := users.Get(ctx, "1")
				return v == "new:1"
			})
			if n := origin.calls.Load(); n != 2 {
				t.Fatalf("the origin was called %d times in all, want 2", n)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// A background refresh that fails leaves the stale value served until
// stale-if-error ends, and never returns the error to a caller meanwhile.
func TestLoader_FailedBackgroundRefreshKeepsStaleUntilStaleIfErrorEnds(t *testing.T) {
	c, _ := memCache(t)
	origin := newSlowOrigin("old")
	close(origin.release)
	users := layercache.NewLoader(c, "user:", origin.load, layercache.WithTTL(20*time.Millisecond),
		layercache.WithStaleWhileRevalidate(300*time.Millisecond), layercache.WithStaleIfError(300*time.Millisecond))
	ctx := context.Background()
	if _, err := users.Get(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	origin.fail.Store(true)
	time.Sleep(30 * time.Millisecond)
	for {
		v, err := users.Get(ctx, "1")
		if err != nil {
			break // the stale window ended: now the caller waits for the origin, and sees it fail
		}
		if v != "old:1" {
			t.Fatalf("Get = %q", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := origin.calls.Load(); n < 3 {
		t.Fatalf("the origin was called %d times: the failed refreshes were not retried", n)
	}
}

// A bound loader's hit allocates nothing.
func TestLoader_HitAllocatesNothing(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	users := layercache.NewLoader(c, "user:", func(_ context.Context, id string) (user, error) { return user{Name: id}, nil },
		layercache.WithTTL(time.Minute), layercache.WithTags("users"))
	if _, err := users.Get(ctx, "42"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = users.Get(ctx, "42") }); n != 0 {
		t.Fatalf("a loader hit allocated %v times", n)
	}
	if v, ok, _ := layercache.Lookup[user](ctx, c, "user:42"); !ok || v.Name != "42" {
		t.Fatalf("the loader's entry is not under its prefix: %+v %v", v, ok)
	}
}

// Options that are mistakes panic at NewLoader.
func TestNewLoader_PanicsOnMistakes(t *testing.T) {
	c, _ := memCache(t)
	load := func(context.Context, string) (string, error) { return "", nil }
	for name, f := range map[string]func(){
		"nil cache": func() { layercache.NewLoader(nil, "p:", load) },
		"nil load":  func() { layercache.NewLoader[string](c, "p:", nil) },
		"batch of a type": func() {
			layercache.NewLoader(c, "p:", load, layercache.WithBatch(func(context.Context, []string) (map[string]int, error) { return nil, nil }))
		},
		"no refresh room": func() { layercache.NewLoader(c, "p:", load, layercache.WithBackgroundRefresh(0, time.Second)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
