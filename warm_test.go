package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// warmStack is a memory L1 large enough for every warmed key over a Redis
// L2 reached through client.
func warmStack(t *testing.T, client goredis.UniversalClient, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	l2, err := redis.New(redis.Options{Client: client, Prefix: "warm:"})
	if err != nil {
		t.Fatal(err)
	}
	return newCache(t, []driver.Layer{newMemory(t, memory.Options{MaxSize: 10_000}), l2}, opts...)
}

// warmLoads counts loader calls per key.
type warmLoads struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *warmLoads) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = make(map[string]int)
	}
	l.n[key]++
}

func (l *warmLoads) get(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[key]
}

func (l *warmLoads) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.n {
		n += c
	}
	return n
}

// warmUser is the value the user items warm: a struct, so that a reader
// of the wrong type or an undecoded value shows.
func warmUser(i int) user { return user{ID: int64(i), Name: fmt.Sprint("user", i)} }

// userItems are n items warming "user:0".."user:n-1", counting loads.
func userItems(n int, loads *warmLoads) []layercache.WarmItem {
	items := make([]layercache.WarmItem, n)
	for i := range items {
		key := fmt.Sprint("user:", i)
		items[i] = layercache.WarmFunc(key, func(context.Context) (user, error) {
			loads.add(key)
			return warmUser(i), nil
		}, layercache.WithTTL(time.Hour))
	}
	return items
}

func checkReportAddsUp(t *testing.T, r layercache.WarmReport) {
	t.Helper()
	if sum := r.Loaded + r.Skipped + r.NotFound + r.Failed + r.Abandoned; sum != r.Total {
		t.Fatalf("report does not add up to %d: %+v", r.Total, r)
	}
	if len(r.Errors) != r.Failed {
		t.Fatalf("%d failed items but %d errors: %v", r.Failed, len(r.Errors), r.Errors)
	}
}

func TestWarm_ThousandKeysConcurrentlyLoadsEachOnceAndReportsProgress(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))
	ctx := context.Background()
	const n, concurrency = 1000, 8

	var loads warmLoads
	var running, most atomic.Int64
	// The first loads wait until Concurrency of them run at once, which
	// shows that the warm does use them all.
	allRunning := make(chan struct{})
	var closeOnce sync.Once
	items := make([]layercache.WarmItem, n)
	for i := range items {
		key := fmt.Sprint("user:", i)
		items[i] = layercache.WarmFunc(key, func(context.Context) (user, error) {
			now := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
			}
			if now == concurrency {
				closeOnce.Do(func() { close(allRunning) })
			}
			select {
			case <-allRunning:
			case <-time.After(10 * time.Second):
				t.Errorf("%d loads never ran at once", concurrency)
			}
			loads.add(key)
			return warmUser(i), nil
		}, layercache.WithTTL(time.Hour))
	}

	var progress []int
	r, err := c.Warm(ctx, items, layercache.WarmOptions{
		Concurrency: concurrency,
		Progress: func(done, total int) {
			if total != n {
				t.Errorf("progress total %d, want %d", total, n)
			}
			progress = append(progress, done)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReportAddsUp(t, r)
	if r.Loaded != n || r.Total != n {
		t.Fatalf("report %+v, want %d loaded", r, n)
	}
	if m := most.Load(); m != concurrency {
		t.Fatalf("at most %d loads ran at once, want %d", m, concurrency)
	}
	for i := range n {
		if got := loads.get(fmt.Sprint("user:", i)); got != 1 {
			t.Fatalf("user:%d loaded %d times", i, got)
		}
	}
	if len(progress) != n+1 {
		t.Fatalf("progress called %d times, want %d", len(progress), n+1)
	}
	for i, done := range progress {
		if done != i {
			t.Fatalf("progress call %d reported %d done: not counting up one by one", i, done)
		}
	}

	// Every value is in this instance's L1, typed...
	before := c.Stats()
	for i := range n {
		u, ok, err := layercache.Lookup[user](ctx, c, fmt.Sprint("user:", i))
		if err != nil || !ok || u.Name != warmUser(i).Name {
			t.Fatalf("user:%d after the warm: %+v, %v, %v", i, u, ok, err)
		}
	}
	if hits := c.Stats().Layers[0].Hits - before.Layers[0].Hits; hits != n {
		t.Fatalf("%d of %d reads hit L1", hits, n)
	}
	// ...and, once the background writes are done, in Redis for every
	// other instance.
	must(t, c.Close())
	other := warmStack(t, srv.Client(t))
	for i := range n {
		u, err := layercache.Get(ctx, other, fmt.Sprint("user:", i), func(context.Context) (user, error) {
			return user{}, errors.New("the other instance must not load")
		})
		if err != nil || u.Name != warmUser(i).Name {
			t.Fatalf("user:%d on the other instance: %+v, %v", i, u, err)
		}
	}
}

func TestWarm_HigherPriorityStartsFirst(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))

	var mu sync.Mutex
	var started []string
	item := func(key string, priority int) layercache.WarmItem {
		it := layercache.WarmFunc(key, func(context.Context) (string, error) {
			mu.Lock()
			started = append(started, key)
			mu.Unlock()
			return key, nil
		})
		it.Priority = priority
		return it
	}
	items := []layercache.WarmItem{
		item("low", -5), item("mid-a", 0), item("top", 10), item("mid-b", 0), item("high", 3), item("mid-c", 0),
	}
	r, err := c.Warm(context.Background(), items, layercache.WarmOptions{Concurrency: 1})
	if err != nil || r.Loaded != len(items) {
		t.Fatal(r, err)
	}
	// Equal priorities keep the order they were given in.
	want := []string{"top", "high", "mid-a", "mid-b", "mid-c", "low"}
	if !slices.Equal(started, want) {
		t.Fatalf("loaded in order %v, want %v", started, want)
	}
}

func TestWarm_FirstFailureStopsUnlessContinueOnError(t *testing.T) {
	errOrigin := errors.New("origin refused")
	items := func(loads *warmLoads) []layercache.WarmItem {
		items := userItems(10, loads)
		items[3] = layercache.WarmFunc("user:3", func(context.Context) (user, error) {
			loads.add("user:3")
			return user{}, errOrigin
		})
		return items
	}

	t.Run("stop", func(t *testing.T) {
		c := warmStack(t, redistest.Start(t).Client(t))
		var loads warmLoads
		r, err := c.Warm(context.Background(), items(&loads), layercache.WarmOptions{Concurrency: 1})
		checkReportAddsUp(t, r)
		if r.Loaded != 3 || r.Failed != 1 || r.Abandoned != 6 {
			t.Fatalf("report %+v, want 3 loaded, 1 failed, 6 abandoned", r)
		}
		if loads.total() != 4 {
			t.Fatalf("%d loads, want 4: nothing starts after the failure", loads.total())
		}
		var we *layercache.WarmError
		if !errors.Is(err, errOrigin) || !errors.As(err, &we) || we.Key != "user:3" {
			t.Fatalf("err %v, want the failure of user:3", err)
		}
		if _, ok, _ := layercache.Lookup[user](context.Background(), c, "user:5"); ok {
			t.Fatal("an item after the failure was warmed")
		}
	})

	t.Run("continue", func(t *testing.T) {
		c := warmStack(t, redistest.Start(t).Client(t))
		var loads warmLoads
		r, err := c.Warm(context.Background(), items(&loads), layercache.WarmOptions{Concurrency: 3, ContinueOnError: true})
		checkReportAddsUp(t, r)
		if r.Loaded != 9 || r.Failed != 1 || r.Abandoned != 0 {
			t.Fatalf("report %+v, want 9 loaded and 1 failed", r)
		}
		if !errors.Is(err, errOrigin) || !errors.Is(r.Errors[0], errOrigin) {
			t.Fatalf("err %v, errors %v: want the origin's error", err, r.Errors)
		}
		if _, ok, _ := layercache.Lookup[user](context.Background(), c, "user:9"); !ok {
			t.Fatal("the last item was not warmed")
		}
	})
}

func TestWarm_SkipsKeysCachedInAnyLayer(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c := warmStack(t, srv.Client(t))
	// Another instance cached some keys in Redis only (this instance's L1
	// has never seen them); this one cached others in both layers.
	other := warmStack(t, srv.Client(t), layercache.WithStrictWrites())
	for i := 0; i < 100; i += 2 {
		must(t, layercache.Set(ctx, other, fmt.Sprint("user:", i), warmUser(i), layercache.WithTTL(time.Hour)))
	}
	for i := 1; i < 20; i += 2 {
		must(t, layercache.Set(ctx, c, fmt.Sprint("user:", i), warmUser(i), layercache.WithTTL(time.Hour)))
	}

	var loads warmLoads
	r, err := c.Warm(ctx, userItems(200, &loads), layercache.WarmOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkReportAddsUp(t, r)
	if r.Skipped != 60 || r.Loaded != 140 {
		t.Fatalf("report %+v, want 60 skipped and 140 loaded", r)
	}
	for i := range 200 {
		cached := (i < 100 && i%2 == 0) || (i < 20 && i%2 == 1)
		if got, want := loads.get(fmt.Sprint("user:", i)), map[bool]int{true: 0, false: 1}[cached]; got != want {
			t.Fatalf("user:%d (cached before: %v) loaded %d times", i, cached, got)
		}
	}
	// A key found in Redis was copied into L1, typed.
	before := c.Stats().Layers[0].Hits
	if u, ok, err := layercache.Lookup[user](ctx, c, "user:42"); !ok || err != nil || u.Name != warmUser(42).Name {
		t.Fatal(u, ok, err)
	}
	if c.Stats().Layers[0].Hits != before+1 {
		t.Fatal("a key skipped because Redis had it is not in L1")
	}

	// Refresh loads every key, the cached ones too, and stores the new
	// value everywhere.
	var reloads warmLoads
	items := make([]layercache.WarmItem, 200)
	for i := range items {
		key := fmt.Sprint("user:", i)
		items[i] = layercache.WarmFunc(key, func(context.Context) (user, error) {
			reloads.add(key)
			return user{ID: int64(i), Name: "renamed"}, nil
		})
	}
	r, err = c.Warm(ctx, items, layercache.WarmOptions{Refresh: true})
	if err != nil || r.Loaded != 200 || reloads.total() != 200 {
		t.Fatalf("refresh: %+v, %v, %d loads", r, err, reloads.total())
	}
	third := warmStack(t, srv.Client(t))
	for _, cache := range []*layercache.Cache{c, third} {
		for _, key := range []string{"user:0", "user:1", "user:199"} {
			if u, ok, err := layercache.Lookup[user](ctx, cache, key); !ok || err != nil || u.Name != "renamed" {
				t.Fatalf("%s after the refresh: %+v, %v, %v", key, u, ok, err)
			}
		}
	}
}

func TestWarm_ContextEndStopsIt(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var loads warmLoads
	const concurrency = 2
	r, err := c.Warm(ctx, userItems(500, &loads), layercache.WarmOptions{
		Concurrency: concurrency,
		Progress: func(done, _ int) {
			if done == 10 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	checkReportAddsUp(t, r)
	if r.Abandoned == 0 || r.Failed != 0 {
		t.Fatalf("report %+v: want abandoned items and no failure", r)
	}
	// Only the loads already running when ctx ended may have run since.
	if n := loads.total(); n > 10+concurrency {
		t.Fatalf("%d loads after ctx ended at 10", n)
	}
	if r.Loaded != loads.total() {
		t.Fatalf("%d loaded but %d loads ran", r.Loaded, loads.total())
	}
}

func TestWarm_NotFoundCachesTheAbsence(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))
	ctx := context.Background()
	gone := layercache.WarmFunc("user:gone", func(context.Context) (user, error) {
		return user{}, fmt.Errorf("no such user: %w", layercache.ErrNotFound)
	}, layercache.WithNegativeTTL(time.Hour))
	r, err := c.Warm(ctx, []layercache.WarmItem{gone}, layercache.WarmOptions{})
	if err != nil || r.NotFound != 1 {
		t.Fatalf("%+v, %v: want one not found and no error", r, err)
	}
	// Warming it again finds the cached absence.
	r, err = c.Warm(ctx, []layercache.WarmItem{gone}, layercache.WarmOptions{})
	if err != nil || r.Skipped != 1 {
		t.Fatalf("%+v, %v: want the cached absence skipped", r, err)
	}
}

func TestWarm_LoaderPanicIsAFailedItem(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))
	for _, refresh := range []bool{false, true} {
		t.Run(fmt.Sprint("refresh=", refresh), func(t *testing.T) {
			boom := layercache.WarmFunc("boom", func(context.Context) (int, error) { panic("no database") })
			var loads warmLoads
			items := append(userItems(3, &loads), boom)
			r, err := c.Warm(context.Background(), items, layercache.WarmOptions{ContinueOnError: true, Refresh: refresh})
			var pe *layercache.PanicError
			if r.Failed != 1 || r.Loaded+r.Skipped != 3 || !errors.As(err, &pe) || pe.Value != "no database" {
				t.Fatalf("%+v, %v: want the panic as the one failure", r, err)
			}
		})
	}
}

func TestWarm_FailedRefreshOfStaleValueIsAFailure(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "k", "old", layercache.WithTTL(time.Millisecond), layercache.WithStaleIfError(time.Hour)))
	eventually(t, "k to go stale", func() bool {
		_, ok, _ := layercache.Lookup[string](ctx, c, "k")
		return !ok
	})
	errOrigin := errors.New("origin down")
	item := layercache.WarmFunc("k", func(context.Context) (string, error) { return "", errOrigin },
		layercache.WithStaleIfError(time.Hour))
	r, err := c.Warm(ctx, []layercache.WarmItem{item}, layercache.WarmOptions{})
	if r.Failed != 1 || !errors.Is(err, errOrigin) {
		t.Fatalf("%+v, %v: a refresh that failed was not reported", r, err)
	}
}

func TestWarm_RefusesBadInputBeforeLoading(t *testing.T) {
	c, _ := memCache(t)
	ctx := context.Background()
	var loads warmLoads
	good := userItems(2, &loads)
	for name, tc := range map[string]struct {
		items []layercache.WarmItem
		o     layercache.WarmOptions
	}{
		"negative concurrency": {good, layercache.WarmOptions{Concurrency: -1}},
		"zero item":            {append(slices.Clone(good), layercache.WarmItem{Key: "x"}), layercache.WarmOptions{}},
		"nil loader":           {append(slices.Clone(good), layercache.WarmFunc[int]("x", nil)), layercache.WarmOptions{}},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := c.Warm(ctx, tc.items, tc.o)
			if err == nil || r.Abandoned != len(tc.items) || loads.total() != 0 {
				t.Fatalf("%+v, %v, %d loads: want an error and nothing loaded", r, err, loads.total())
			}
		})
	}
	must(t, c.Close())
	if _, err := c.Warm(ctx, good, layercache.WarmOptions{}); !errors.Is(err, layercache.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestWarm_NoItemsIsDone(t *testing.T) {
	c, _ := memCache(t)
	calls := 0
	r, err := c.Warm(context.Background(), nil, layercache.WarmOptions{Progress: func(done, total int) {
		calls++
		if done != 0 || total != 0 {
			t.Errorf("progress %d/%d", done, total)
		}
	}})
	if err != nil || r.Total != 0 || calls != 1 {
		t.Fatal(r, err, calls)
	}
}

func TestWarm_OnNamespaceViewWarmsOnlyItsKeys(t *testing.T) {
	srv := redistest.Start(t)
	c := warmStack(t, srv.Client(t))
	ctx := context.Background()
	tenant := c.Namespace("tenant:42")
	var loads warmLoads
	r, err := tenant.Warm(ctx, userItems(5, &loads), layercache.WarmOptions{})
	if err != nil || r.Loaded != 5 {
		t.Fatal(r, err)
	}
	if _, ok, _ := layercache.Lookup[user](ctx, tenant, "user:3"); !ok {
		t.Fatal("the view does not hold what it warmed")
	}
	if _, ok, _ := layercache.Lookup[user](ctx, c, "user:3"); ok {
		t.Fatal("a warm of a view wrote outside its namespace")
	}
	// The same items on the root cache are not the view's: they load.
	r, err = c.Warm(ctx, userItems(5, &loads), layercache.WarmOptions{})
	if err != nil || r.Loaded != 5 || loads.total() != 10 {
		t.Fatal(r, err, loads.total())
	}
}

// BenchmarkWarm warms 1,000 keys into a memory + Redis stack from an origin
// that sleeps 1ms a load, next to its baseline in the same run: the same
// keys read with Get in a plain loop. concurrency=1 against the loop is the
// cost of Warm's bookkeeping; concurrency=8 against it is the speed-up from
// loading eight at a time. One op is one warm of 1,000 new keys.
func BenchmarkWarm(b *testing.B) {
	srv := redistest.Start(b)
	client := srv.Client(b)
	l2, err := redis.New(redis.Options{Client: client, Prefix: "bench:"})
	if err != nil {
		b.Fatal(err)
	}
	c := newCache(b, []driver.Layer{newMemory(b, memory.Options{MaxSize: 10_000}), l2})
	ctx := context.Background()
	const n = 1000
	origin := func(i int) func(context.Context) (user, error) {
		return func(context.Context) (user, error) {
			time.Sleep(time.Millisecond)
			return warmUser(i), nil
		}
	}
	round := 0
	keys := func() []string {
		round++
		k := make([]string, n)
		for i := range k {
			k[i] = fmt.Sprint(round, ":user:", i)
		}
		return k
	}

	b.Run("keys=1000/origin=1ms/baseline=get-loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, k := range keys() {
				if _, err := layercache.Get(ctx, c, k, origin(i), layercache.WithTTL(time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	for _, concurrency := range []int{1, 8} {
		b.Run(fmt.Sprintf("keys=1000/origin=1ms/warm/concurrency=%d", concurrency), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				items := make([]layercache.WarmItem, n)
				for i, k := range keys() {
					items[i] = layercache.WarmFunc(k, origin(i), layercache.WithTTL(time.Minute))
				}
				b.StartTimer()
				r, err := c.Warm(ctx, items, layercache.WarmOptions{Concurrency: concurrency})
				if err != nil || r.Loaded != n {
					b.Fatal(r, err)
				}
			}
		})
	}
	// The loop and the warms interleaved, so that drift in the machine's
	// load hits all alike: the reported ratios are the claim.
	b.Run("keys=1000/origin=1ms/interleaved", func(b *testing.B) {
		var loop, warm1, warm8 time.Duration
		for b.Loop() {
			t0 := time.Now()
			for i, k := range keys() {
				if _, err := layercache.Get(ctx, c, k, origin(i), layercache.WithTTL(time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
			loop += time.Since(t0)
			for _, w := range []struct {
				concurrency int
				took        *time.Duration
			}{{1, &warm1}, {8, &warm8}} {
				items := make([]layercache.WarmItem, n)
				for i, k := range keys() {
					items[i] = layercache.WarmFunc(k, origin(i), layercache.WithTTL(time.Minute))
				}
				t0 := time.Now()
				if r, err := c.Warm(ctx, items, layercache.WarmOptions{Concurrency: w.concurrency}); err != nil || r.Loaded != n {
					b.Fatal(r, err)
				}
				*w.took += time.Since(t0)
			}
		}
		b.ReportMetric(float64(warm1)/float64(loop), "x-concurrency=1-vs-loop")
		b.ReportMetric(float64(loop)/float64(warm8), "speedup-concurrency=8-vs-loop")
	})
}

func TestWarm_PanickingProgressLeavesNoWorkerBehind(t *testing.T) {
	c, _ := memCache(t)
	var loads warmLoads
	func() {
		defer func() {
			if p := recover(); p != "progress bar broke" {
				t.Fatalf("recovered %v", p)
			}
		}()
		_, _ = c.Warm(context.Background(), userItems(50, &loads), layercache.WarmOptions{
			Concurrency: 4,
			Progress: func(done, _ int) {
				if done == 3 {
					panic("progress bar broke")
				}
			},
		})
	}()
	// Warm returned only once its workers had: nothing loads any more.
	n := loads.total()
	if _, err := layercache.Get(context.Background(), c, "after", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if loads.total() != n {
		t.Fatal("items kept loading after Warm returned")
	}
}

// Regression: a warm whose ctx had ended before it started waited forever
// for results that no item would send.
func TestWarm_EndedContextLoadsNothing(t *testing.T) {
	c, _ := memCache(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var loads warmLoads
	r, err := c.Warm(ctx, userItems(20, &loads), layercache.WarmOptions{})
	if !errors.Is(err, context.Canceled) || r.Abandoned != 20 || loads.total() != 0 {
		t.Fatalf("%+v, %v, %d loads", r, err, loads.total())
	}
}
