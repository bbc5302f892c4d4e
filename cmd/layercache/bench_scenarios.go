package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache"
)

// originTime is how long the simulated database takes per query.
const originTime = 2 * time.Millisecond

var minuteTTL = layercache.WithTTL(time.Minute)

func benchWarmHit(ctx context.Context, env *benchEnv) (*table, error) {
	t := &table{
		Description: fmt.Sprintf("Reading one key that is already cached, one read at a time, against calling the origin "+
			"(a %v query) every time. With a memory layer on top, a warm key is served from memory whatever is below it; "+
			"the Redis-only row shows what a read costs when it must go to Redis.", originTime),
		Columns: []string{"stack", "reads", "avg", "p50", "p95", "speed-up vs no cache (p50)"},
	}
	o := &origin{d: originTime}
	base, err := measure(300, func() error { _, err := o.load(1)(ctx); return err })
	if err != nil {
		return nil, err
	}
	t.row("no cache (origin every time)", "300", fmtDur(base.mean()), fmtDur(base.pct(50)), fmtDur(base.pct(95)), "1x")
	for _, v := range []struct {
		name string
		spec stackSpec
		n    int
	}{
		{"memory", stackSpec{memory: true}, 100_000},
		{"memory + Redis", stackSpec{memory: true, redis: true}, 100_000},
		{"Redis only", stackSpec{redis: true}, 5_000},
	} {
		st, err := env.open(v.spec)
		if err != nil {
			return nil, err
		}
		load := o.load(1)
		get := func() error { _, err := layercache.Get(ctx, st.Cache, "item:1", load, minuteTTL); return err }
		if _, err := measure(1000, get); err != nil { // warm the key, the pool and the CPU caches
			st.Close()
			return nil, err
		}
		s, err := measure(v.n, get)
		st.Close()
		if err != nil {
			return nil, err
		}
		t.row(v.name, strconv.Itoa(v.n), fmtDur(s.mean()), fmtDur(s.pct(50)), fmtDur(s.pct(95)), ratio(base.pct(50), s.pct(50)))
	}
	t.Notes = []string{
		"Each read is timed on its own; a timing includes one clock read (20-80 ns on this kind of machine), which is most of a memory hit.",
		"The mean of the memory rows is above their p95: a few reads are interrupted by the scheduler or the garbage collector, which on a shared 2-core machine costs microseconds.",
	}
	return t, nil
}

func benchStampede(ctx context.Context, env *benchEnv) (*table, error) {
	const callers, rounds, poolSize = 75, 5, 10
	const loadTime = 20 * time.Millisecond
	t := &table{
		Description: fmt.Sprintf("%d goroutines ask for the same cold key at the same moment, %d rounds (a new key each round); "+
			"the loader is a %v query on a database that serves %d queries at once (its connection pool). Without a cache every "+
			"caller runs the query, and they queue for the pool.", callers, rounds, loadTime, poolSize),
		Columns: []string{"stack", "requests", "loader runs", "time per round (mean)", "slowest round"},
	}
	for _, v := range []struct {
		name string
		spec *stackSpec
	}{
		{"no cache", nil},
		{"memory", &stackSpec{memory: true}},
		{"memory + Redis", &stackSpec{memory: true, redis: true}},
	} {
		o := &origin{d: loadTime, pool: make(chan struct{}, poolSize)}
		var st *benchStack
		if v.spec != nil {
			var err error
			if st, err = env.open(*v.spec); err != nil {
				return nil, err
			}
		}
		var per samples
		for r := range rounds {
			key := "stampede:" + strconv.Itoa(r)
			_, took, err := concurrently(callers, func(int) error {
				if st == nil {
					_, err := o.load(r)(ctx)
					return err
				}
				_, err := layercache.Get(ctx, st.Cache, key, o.load(r), minuteTTL)
				return err
			})
			if err != nil {
				if st != nil {
					st.Close()
				}
				return nil, err
			}
			per = append(per, took)
		}
		if st != nil {
			st.Close()
		}
		t.row(v.name, strconv.Itoa(callers*rounds), strconv.FormatInt(o.calls.Load(), 10), fmtDur(per.mean()), fmtDur(per.max()))
	}
	t.Notes = []string{"Across processes, see distributed single-flight."}
	return t, nil
}

func benchPayload(ctx context.Context, env *benchEnv) (*table, error) {
	t := &table{
		Description: "Hits on values of 1 KB and 1 MB (random bytes, so compression cannot help), from memory and from Redis " +
			"(a Redis-only stack, so every read goes to Redis), against a raw go-redis GET of the same bytes, interleaved with the Redis hits.",
		Columns: []string{"size", "memory hit (p50)", "Redis hit (p50 / p95)", "raw GET (p50 / p95)", "Redis hit vs raw GET (p50)"},
	}
	for _, v := range []struct {
		name  string
		size  int
		reads int
	}{{"1 KB", 1 << 10, 3000}, {"1 MB", 1 << 20, 600}} {
		val := make([]byte, v.size)
		_, _ = rand.Read(val)
		var loads atomic.Int64
		load := func(context.Context) ([]byte, error) { loads.Add(1); return val, nil }

		mem, err := env.open(stackSpec{memory: true})
		if err != nil {
			return nil, err
		}
		get := func(c *layercache.Cache) func() error {
			return func() error { _, err := layercache.Get(ctx, c, "blob", load, minuteTTL); return err }
		}
		_, _ = measure(100, get(mem.Cache))
		memHits, err := measure(50_000, get(mem.Cache))
		mem.Close()
		if err != nil {
			return nil, err
		}

		// A generous timeout: this is about the cost of hits, not about
		// degradation, and a 1 MB read on a busy machine may take a while.
		st, err := env.open(stackSpec{redis: true, timeout: time.Second})
		if err != nil {
			return nil, err
		}
		loads.Store(0)
		raw := env.rawClient(env.redis.Addr, 0)
		rawKey := st.space + ":raw"
		err = raw.Set(ctx, rawKey, val, time.Minute).Err()
		var hits, gets samples
		if err == nil {
			redisGet, rawGet := get(st.Cache), func() error { _, err := raw.Get(ctx, rawKey).Bytes(); return err }
			_, _ = measure(20, redisGet)
			_, _ = measure(20, rawGet)
			for range v.reads {
				h, err := measure(1, redisGet)
				if err != nil {
					break
				}
				g, err := measure(1, rawGet)
				if err != nil {
					break
				}
				hits, gets = append(hits, h...), append(gets, g...)
			}
		}
		st.Close()
		raw.Close()
		if err != nil {
			return nil, err
		}
		if len(hits) < v.reads {
			return nil, fmt.Errorf("%s: reads failed", v.name)
		}
		if n := loads.Load() - 1; n > 0 { // the first read loads
			t.Notes = append(t.Notes, fmt.Sprintf("%s: %d Redis reads timed out and fell back to the loader.", v.name, n))
		}
		t.row(v.name, fmtDur(memHits.pct(50)),
			fmtDur(hits.pct(50))+" / "+fmtDur(hits.pct(95)),
			fmtDur(gets.pct(50))+" / "+fmtDur(gets.pct(95)),
			ratio(hits.pct(50), gets.pct(50)))
	}
	t.Notes = append(t.Notes,
		"A memory hit hands out the stored value itself: its cost does not depend on the size.",
		"A Redis hit also verifies the record's XXH3 checksum, a pass over the whole value (tens of microseconds on 1 MB) that keeps corrupt bytes from being served.",
	)
	return t, nil
}

func benchMemoryPressure(ctx context.Context, env *benchEnv) (*table, error) {
	const maxSize, values, size, revisit = 25, 180, 256 << 10, 25
	t := &table{
		Description: fmt.Sprintf("A memory layer bounded to %d entries receives %d values of 256 KB (%d MB in all); then the first %d "+
			"are read again. Over Redis, what memory evicted is served from Redis instead of the origin.", maxSize, values, values*size>>20, revisit),
		Columns: []string{"stack", "evictions from memory", "first 25: still in memory", "from Redis", "origin fetches"},
	}
	for _, v := range []struct {
		name string
		spec stackSpec
	}{
		{"memory (max_size 25)", stackSpec{memory: true, maxSize: maxSize}},
		{"memory (max_size 25) + Redis", stackSpec{memory: true, maxSize: maxSize, redis: true,
			opts: []layercache.Option{layercache.WithStrictWrites()}}},
	} {
		st, err := env.open(v.spec)
		if err != nil {
			return nil, err
		}
		var fetches atomic.Int64
		load := func(i int) func(context.Context) ([]byte, error) {
			return func(context.Context) ([]byte, error) {
				fetches.Add(1)
				b := make([]byte, size)
				_, _ = rand.Read(b)
				return b, nil
			}
		}
		for i := range values {
			if _, err := layercache.Get(ctx, st.Cache, "big:"+strconv.Itoa(i), load(i), minuteTTL); err != nil {
				st.Close()
				return nil, err
			}
		}
		// otter evicts asynchronously; let it catch up before counting.
		for deadline := time.Now().Add(time.Second); st.l1.Len() > maxSize && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		evicted := values - st.l1.Len()
		before, filled := st.Stats(), fetches.Load()
		for i := range revisit {
			if _, err := layercache.Get(ctx, st.Cache, "big:"+strconv.Itoa(i), load(i), minuteTTL); err != nil {
				st.Close()
				return nil, err
			}
		}
		after := st.Stats()
		st.Close()
		fromRedis := "-"
		if len(after.Layers) > 1 {
			fromRedis = strconv.FormatUint(after.Layers[1].Hits-before.Layers[1].Hits, 10)
		}
		t.row(v.name, strconv.Itoa(evicted), strconv.FormatUint(after.Layers[0].Hits-before.Layers[0].Hits, 10),
			fromRedis, strconv.FormatInt(fetches.Load()-filled, 10))
	}
	t.Notes = []string{
		"The memory layer (otter, W-TinyLFU) keeps at most max_size entries whatever their size; size it in entries, or put large values in Redis only.",
		"Each value read back is put in memory again and evicts another, so the revisit itself pushes out some of the first 25 before they are read.",
	}
	return t, nil
}
