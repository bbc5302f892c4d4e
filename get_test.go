package layercache_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
)

type user struct {
	ID    int64             `json:"id"`
	Name  string            `json:"name"`
	Roles []string          `json:"roles"`
	Attrs map[string]string `json:"attrs"`
}

// roundTrip stores v through Set and reads it back from the byte layer
// alone, so the value crosses the codec and the envelope.
func roundTrip[V any](t *testing.T, v V) V {
	t.Helper()
	c := newCache(t, []driver.Layer{newByteLayer()})
	ctx := context.Background()
	if err := layercache.Set(ctx, c, "k", v); err != nil {
		t.Fatal(err)
	}
	got, ok, err := layercache.Lookup[V](ctx, c, "k")
	if err != nil || !ok {
		t.Fatalf("Lookup = %v, %v, %v", got, ok, err)
	}
	return got
}

func TestGet_RoundTripsTypesExactly(t *testing.T) {
	t.Run("struct", func(t *testing.T) {
		u := user{ID: 7, Name: "ada", Roles: []string{"admin"}, Attrs: map[string]string{"team": "core"}}
		if got := roundTrip(t, u); !reflect.DeepEqual(got, u) {
			t.Fatalf("got %+v, want %+v", got, u)
		}
	})
	t.Run("slice and map", func(t *testing.T) {
		s := []int{3, 1, 2}
		if got := roundTrip(t, s); !reflect.DeepEqual(got, s) {
			t.Fatalf("got %v", got)
		}
		m := map[string][]float64{"a": {1.5}, "b": nil}
		if got := roundTrip(t, m); !reflect.DeepEqual(got, m) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		b := []byte{0, 1, 2, 255}
		if got := roundTrip(t, b); !reflect.DeepEqual(got, b) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("int64 above 2^53", func(t *testing.T) {
		const n = int64(1)<<53 + 1
		if got := roundTrip(t, n); got != n {
			t.Fatalf("got %d, want %d", got, n)
		}
		if got := roundTrip(t, int64(math.MaxInt64)); got != math.MaxInt64 {
			t.Fatalf("got %d", got)
		}
	})
	t.Run("nil versus empty slice", func(t *testing.T) {
		if got := roundTrip(t, []string(nil)); got != nil {
			t.Fatalf("nil slice came back as %#v", got)
		}
		if got := roundTrip(t, []string{}); got == nil || len(got) != 0 {
			t.Fatalf("empty slice came back as %#v", got)
		}
		if got := roundTrip(t, []byte(nil)); got != nil {
			t.Fatalf("nil []byte came back as %#v", got)
		}
		if got := roundTrip(t, []byte{}); got == nil {
			t.Fatal("empty []byte came back nil")
		}
	})
	t.Run("time with location", func(t *testing.T) {
		loc, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Skip("no zone database:", err)
		}
		want := time.Date(2024, 3, 10, 1, 59, 59, 123456789, loc)
		got := roundTrip(t, want)
		if !got.Equal(want) || got.Location().String() != "America/New_York" {
			t.Fatalf("got %v (%s), want %v", got, got.Location(), want)
		}
		if _, off := got.Zone(); off != -5*3600 {
			t.Fatalf("offset %d", off)
		}
		utc := roundTrip(t, want.UTC())
		if utc.Location() != time.UTC || !utc.Equal(want) {
			t.Fatalf("UTC time came back as %v", utc)
		}
	})
	t.Run("string", func(t *testing.T) {
		if got := roundTrip(t, "héllo\x00"); got != "héllo\x00" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestGet_CachedZeroValueIsNotAbsence(t *testing.T) {
	for name, layers := range map[string]func() []driver.Layer{
		"memory": func() []driver.Layer { return []driver.Layer{newMemory(t, memoryOpts)} },
		"bytes":  func() []driver.Layer { return []driver.Layer{newByteLayer()} },
	} {
		t.Run(name, func(t *testing.T) {
			c := newCache(t, layers(), layercache.WithDefaults(layercache.WithNegativeTTL(time.Hour)))
			ctx := context.Background()
			var loads atomic.Int32
			zero := func(context.Context) (int, error) { loads.Add(1); return 0, nil }
			absent := func(context.Context) (int, error) { loads.Add(1); return 0, layercache.ErrNotFound }
			for range 3 {
				if v, err := layercache.Get(ctx, c, "zero", zero); v != 0 || err != nil {
					t.Fatalf("zero: %v, %v", v, err)
				}
				if _, err := layercache.Get(ctx, c, "absent", absent); !errors.Is(err, layercache.ErrNotFound) {
					t.Fatalf("absent: %v", err)
				}
			}
			if loads.Load() != 2 {
				t.Fatalf("loader ran %d times, want 2 (one per key)", loads.Load())
			}
			if _, ok, err := layercache.Lookup[int](ctx, c, "zero"); !ok || err != nil {
				t.Fatalf("Lookup of cached zero: ok=%v err=%v", ok, err)
			}
			if _, ok, err := layercache.Lookup[int](ctx, c, "absent"); ok || err != nil {
				t.Fatalf("Lookup of cached absence: ok=%v err=%v", ok, err)
			}
		})
	}
}

func TestGet_ConcurrentMissRunsLoaderOnce(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	const goroutines, rounds = 75, 5
	var loads atomic.Int32
	for round := range rounds {
		if err := c.Delete(ctx, "hot"); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		var started, wg sync.WaitGroup
		started.Add(goroutines)
		wg.Add(goroutines)
		errs := make(chan error, goroutines)
		for range goroutines {
			go func() {
				defer wg.Done()
				started.Done()
				v, err := layercache.Get(ctx, c, "hot", func(context.Context) (int, error) {
					loads.Add(1)
					<-release // hold the load until every caller has asked
					return round, nil
				})
				if err != nil || v != round {
					errs <- errors.Join(err, errors.New("wrong value"))
				}
			}()
		}
		started.Wait()
		eventually(t, "all callers to join the load", func() bool {
			return c.Stats().Deduplicated >= uint64((round+1)*(goroutines-1))
		})
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	if got := loads.Load(); got != rounds {
		t.Fatalf("loader ran %d times for %d rounds of %d callers, want %d", got, rounds, goroutines, rounds)
	}
}

func TestGet_CancelledWaiterReturnsAtOnce(t *testing.T) {
	c, _ := memCache(t)
	release := make(chan struct{})
	loader := func(context.Context) (string, error) { <-release; return "v", nil }

	leaderDone := make(chan error, 1)
	go func() {
		_, err := layercache.Get(context.Background(), c, "k", loader)
		leaderDone <- err
	}()
	eventually(t, "the leader to start", func() bool { return c.Stats().Loads == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	waiterDone := make(chan error, 1)
	go func() {
		_, err := layercache.Get(ctx, c, "k", loader)
		waiterDone <- err
	}()
	eventually(t, "the waiter to join", func() bool { return c.Stats().Deduplicated == 1 })
	cancel()
	// The waiter must come back while the load is still held.
	if err := <-waiterDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
	if err := <-leaderDone; err != nil {
		t.Fatalf("leader: %v", err)
	}
	if v, err := layercache.Get(context.Background(), c, "k", loader); v != "v" || err != nil {
		t.Fatalf("after load: %q, %v", v, err)
	}
}

func TestGet_CancelledLeaderHandsLoadToWaiter(t *testing.T) {
	c, _ := memCache(t)
	var loads atomic.Int32
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	go func() {
		_, err := layercache.Get(leaderCtx, c, "k", func(ctx context.Context) (string, error) {
			loads.Add(1)
			<-ctx.Done() // a loader that honours its context
			return "", ctx.Err()
		})
		leaderDone <- err
	}()
	eventually(t, "the leader to start", func() bool { return loads.Load() == 1 })
	waiterDone := make(chan string, 1)
	go func() {
		v, err := layercache.Get(context.Background(), c, "k", func(context.Context) (string, error) {
			loads.Add(1)
			return "from waiter", nil
		})
		if err != nil {
			v = err.Error()
		}
		waiterDone <- v
	}()
	eventually(t, "the waiter to join", func() bool { return c.Stats().Deduplicated == 1 })
	cancelLeader()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	if v := <-waiterDone; v != "from waiter" {
		t.Fatalf("waiter got %q, want the value of its own load", v)
	}
}

func TestGet_PanickingLoaderFailsEveryWaiter(t *testing.T) {
	c, _ := memCache(t)
	release := make(chan struct{})
	const callers = 10
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := layercache.Get(context.Background(), c, "boom", func(context.Context) (int, error) {
				<-release
				panic("loader bug")
			})
			errs <- err
		}()
	}
	eventually(t, "callers to join", func() bool { return c.Stats().Deduplicated == callers-1 })
	close(release)
	for range callers {
		var pe *layercache.PanicError
		if err := <-errs; !errors.As(err, &pe) || pe.Value != "loader bug" || len(pe.Stack) == 0 {
			t.Fatalf("got %v, want a PanicError with the panic value and stack", err)
		}
	}
	// The panic is not cached and the cache still works.
	if v, err := layercache.Get(context.Background(), c, "boom", func(context.Context) (int, error) { return 1, nil }); v != 1 || err != nil {
		t.Fatalf("after panic: %v, %v", v, err)
	}
}

func TestGet_NotFoundCachedForNegativeTTL(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	var loads atomic.Int32
	loader := func(context.Context) (int, error) {
		loads.Add(1)
		return 0, errors.Join(errors.New("no such user"), layercache.ErrNotFound)
	}
	const negTTL = 80 * time.Millisecond
	for range 5 {
		if _, err := layercache.Get(ctx, c, "ghost", loader, layercache.WithNegativeTTL(negTTL)); !errors.Is(err, layercache.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("absence not cached: loader ran %d times", loads.Load())
	}
	eventually(t, "the negative entry to expire", func() bool {
		_, _ = layercache.Get(ctx, c, "ghost", loader, layercache.WithNegativeTTL(negTTL))
		return loads.Load() == 2
	})

	// With a negative TTL of zero the absence is not cached.
	for range 3 {
		_, _ = layercache.Get(ctx, c, "ghost2", loader, layercache.WithNegativeTTL(0))
	}
	if loads.Load() != 5 {
		t.Fatalf("loader ran %d times, want 5", loads.Load())
	}
}

func TestGet_StaleWhileRevalidateServesStaleAndRefreshesOnce(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(30 * time.Millisecond), layercache.WithStaleWhileRevalidate(time.Hour)}
	if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "old", nil }, opts...); v != "old" || err != nil {
		t.Fatal(v, err)
	}
	time.Sleep(40 * time.Millisecond) // let the entry go stale

	release := make(chan struct{})
	var refreshes atomic.Int32
	refresh := func(context.Context) (string, error) {
		refreshes.Add(1)
		<-release
		return "new", nil
	}
	refresherDone := make(chan string, 1)
	go func() {
		v, _ := layercache.Get(ctx, c, "k", refresh, opts...)
		refresherDone <- v
	}()
	eventually(t, "the refresh to start", func() bool { return refreshes.Load() == 1 })
	// While the refresh is held, everyone else is served the stale value.
	for range 20 {
		// A caller made to wait for the refresh fails here, not hangs.
		waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := layercache.Get(waitCtx, c, "k", refresh, opts...)
		cancel()
		if v != "old" || err != nil {
			t.Fatalf("during refresh: %q, %v", v, err)
		}
	}
	close(release)
	if v := <-refresherDone; v != "new" {
		t.Fatalf("refresher got %q", v)
	}
	if v, _ := layercache.Get(ctx, c, "k", refresh, opts...); v != "new" {
		t.Fatalf("after refresh: %q", v)
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("refreshed %d times, want 1", n)
	}
	if s := c.Stats(); s.StaleServed < 20 {
		t.Fatalf("StaleServed = %d, want >= 20", s.StaleServed)
	}
}

func TestGet_StaleIfErrorServesStaleWhenLoaderFails(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(20 * time.Millisecond), layercache.WithStaleIfError(time.Hour)}
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "good", nil }, opts...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	failing := func(context.Context) (string, error) { return "", errors.New("database down") }
	if v, err := layercache.Get(ctx, c, "k", failing, opts...); v != "good" || err != nil {
		t.Fatalf("got %q, %v; want the stale value", v, err)
	}
	// Without stale-if-error the failure is returned.
	if _, err := layercache.Get(ctx, c, "other", failing, opts...); err == nil || err.Error() != "database down" {
		t.Fatalf("got %v, want the loader's error", err)
	}
}

func TestGet_EarlyRefreshRenewsHotKeyBeforeItGoesStale(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	opts := []layercache.EntryOption{layercache.WithTTL(ttl), layercache.WithEarlyRefresh(ttl)}
	var loads atomic.Int32
	var refreshedAt atomic.Int64
	loader := func(context.Context) (int32, error) {
		n := loads.Add(1)
		if n == 2 {
			refreshedAt.Store(time.Now().UnixNano())
		}
		return n, nil
	}
	start := time.Now()
	if _, err := layercache.Get(ctx, c, "hot", loader, opts...); err != nil {
		t.Fatal(err)
	}
	// Keep hitting the key until it is refreshed.
	eventually(t, "a refresh", func() bool {
		v, err := layercache.Get(ctx, c, "hot", loader, opts...)
		return err == nil && v == 2
	})
	// The first entry went stale no earlier than start+ttl: a refresh
	// before that came early, from a hit, not from a miss at expiry.
	if at := time.Unix(0, refreshedAt.Load()); !at.Before(start.Add(ttl)) {
		t.Fatalf("refreshed %v after the first load, when the entry was already stale", at.Sub(start))
	}
	if s := c.Stats(); s.Deduplicated != 0 {
		t.Fatalf("stats %+v: a caller waited for the refresh", s)
	}
}

func TestGet_BackfillCarriesRemainingLifetime(t *testing.T) {
	l1 := newMemory(t, memoryOpts)
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{l1, l2})
	ctx := context.Background()

	if err := layercache.Set(ctx, c, "k", "v", layercache.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want, _ := l2.Get(ctx, "k")
	_ = l1.Delete(ctx, "k")

	if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "", errors.New("must not load") }); v != "v" || err != nil {
		t.Fatalf("got %q, %v", v, err)
	}
	got, _ := l1.Get(ctx, "k")
	if got == nil {
		t.Fatal("L2 hit did not backfill L1")
	}
	if got.ExpiresAt != want.ExpiresAt || got.StaleAt != want.StaleAt || got.Value != "v" {
		t.Fatalf("backfilled entry %+v, want expiry %d", got, want.ExpiresAt)
	}
	if s := c.Stats(); s.Layers[1].Hits != 1 || s.Loads != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestGet_CorruptValueIsMissAndCountedError(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2})
	ctx := context.Background()
	l2.put("k", []byte("written by someone else"))
	v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "loaded", nil })
	if v != "loaded" || err != nil {
		t.Fatalf("got %q, %v", v, err)
	}
	if s := c.Stats(); s.Layers[1].Errors != 1 {
		t.Fatalf("corrupt value not counted: %+v", s.Layers[1])
	}
}

func TestGet_TypeMismatchIsAnError(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	if err := layercache.Set(ctx, c, "k", "a string"); err != nil {
		t.Fatal(err)
	}
	_, err := layercache.Get(ctx, c, "k", func(context.Context) (int, error) { return 1, nil })
	if !errors.Is(err, layercache.ErrTypeMismatch) {
		t.Fatalf("got %v, want ErrTypeMismatch", err)
	}
}

func TestGet_WithCloneHandsOutCopies(t *testing.T) {
	c, _ := memCache(t, layercache.WithClone())
	ctx := context.Background()
	load := func(context.Context) ([]int, error) { return []int{1, 2, 3}, nil }
	a, _ := layercache.Get(ctx, c, "k", load)
	a[0] = 99
	b, _ := layercache.Get(ctx, c, "k", load)
	if b[0] != 1 {
		t.Fatalf("mutation of one caller's value reached another: %v", b)
	}
}

func TestGet_L1HitAllocatesNothing(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	id, prefix := 42, "user:"
	get := func() {
		// A closure capturing locals, as callers write them.
		_, _ = layercache.Get(ctx, c, "user:42", func(context.Context) (user, error) {
			return user{ID: int64(id), Name: prefix}, nil
		}, layercache.WithTTL(time.Minute), layercache.WithTags("users", prefix))
	}
	get()
	if n := testing.AllocsPerRun(100, get); n != 0 {
		t.Fatalf("an L1 hit allocated %v times", n)
	}
}

// An entry with a stale-while-revalidate window, still fresh, is a plain
// hit too: Get and Lookup answer it without allocating or going the long
// way.
func TestGetAndLookup_FreshHitWithStaleWindowAllocatesNothing(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(time.Hour), layercache.WithStaleWhileRevalidate(time.Minute)}
	must(t, layercache.Set(ctx, c, "k", "v", opts...))
	get := func() {
		if v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "loaded", nil }, opts...); v != "v" || err != nil {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	lookup := func() {
		if v, ok, err := layercache.Lookup[string](ctx, c, "k"); v != "v" || !ok || err != nil {
			t.Fatalf("Lookup = %q, %v, %v", v, ok, err)
		}
	}
	for name, f := range map[string]func(){"Get": get, "Lookup": lookup} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("a fresh %s hit with a stale window allocated %v times", name, n)
		}
	}
}

func TestDelete_DuringLoadWins(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2})
	ctx := context.Background()
	release := make(chan struct{})
	done := make(chan string, 1)
	go func() {
		v, _ := layercache.Get(ctx, c, "k", func(context.Context) (string, error) {
			<-release
			return "loaded before the delete", nil
		})
		done <- v
	}()
	eventually(t, "the load to start", func() bool { return c.Stats().Loads == 1 })
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if v := <-done; v != "loaded before the delete" {
		t.Fatalf("caller got %q", v)
	}
	_ = c.Close() // waits for background writes
	if l2.has("k") {
		t.Fatal("the older load was written to L2 after the delete")
	}
	if e, _ := c.Stats(), 0; e.Layers[0].Hits != 0 {
		t.Fatal("unexpected L1 hit")
	}
}

func TestInvalidateTags_DuringLoadWins(t *testing.T) {
	c, l1 := memCache(t)
	ctx := context.Background()
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = layercache.Get(ctx, c, "k", func(context.Context) (string, error) {
			<-release
			return "old", nil
		}, layercache.WithTags("t"))
	}()
	eventually(t, "the load to start", func() bool { return c.Stats().Loads == 1 })
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	if e, _ := l1.Get(ctx, "k"); e != nil {
		t.Fatalf("L1 holds %v after the tag was invalidated during the load", e.Value)
	}
}

func TestInvalidateTags_RemovesTaggedEntriesFromEveryLayer(t *testing.T) {
	l1, l2 := newMemory(t, memoryOpts), newByteLayer()
	c := newCache(t, []driver.Layer{l1, l2})
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "a", 1, layercache.WithTags("users")))
	must(t, layercache.Set(ctx, c, "b", 2, layercache.WithTags("teams")))
	must(t, c.InvalidateTags(ctx, "users"))
	if _, ok, _ := layercache.Lookup[int](ctx, c, "a"); ok {
		t.Fatal("tagged entry survived")
	}
	if l2.has("a") || !l2.has("b") {
		t.Fatal("L2 did not drop exactly the tagged entry")
	}
	if v, ok, _ := layercache.Lookup[int](ctx, c, "b"); !ok || v != 2 {
		t.Fatal("untagged entry lost")
	}
}

func TestCache_ClosedCacheReturnsErrClosed(t *testing.T) {
	c, _ := memCache(t)
	must(t, c.Close())
	must(t, c.Close())
	if _, err := layercache.Get(context.Background(), c, "k", func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, layercache.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := layercache.Set(context.Background(), c, "k", 1); !errors.Is(err, layercache.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
}

func TestNew_RejectsBadInput(t *testing.T) {
	if _, err := layercache.New(nil); err == nil {
		t.Fatal("no layers accepted")
	}
	if _, err := layercache.New([]driver.Layer{newByteLayer()}, layercache.WithDefaults(layercache.WithTTL(-time.Second))); err == nil {
		t.Fatal("negative TTL accepted")
	}
	if _, err := layercache.New([]driver.Layer{newByteLayer()}, layercache.WithDefaults(layercache.WithJitter(1.5))); err == nil {
		t.Fatal("jitter of 1.5 accepted")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
