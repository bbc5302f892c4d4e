package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/layercache/layercache"
)

func benchSlowRedis(ctx context.Context, env *benchEnv) (*table, error) {
	const timeout, loadTime, reads = 250 * time.Millisecond, 10 * time.Millisecond, 5
	t := &table{
		Description: fmt.Sprintf("Memory + Redis, with a proxy that delays every Redis reply by 0, 100 or 500 ms; Redis operation "+
			"timeout %v, breaker held closed so that every read tries Redis. Hot hit: a key in memory. Redis hit: a key only in "+
			"Redis. Cold miss: a key nowhere, %v loader.", timeout, loadTime),
		Columns: []string{"added Redis latency", "memory hot hit (avg)", "Redis hit (median of 5)", "cold miss (median of 5)", "Redis hits that fell back to the loader"},
	}
	p, err := newProxy(env.redis.Addr)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	space := env.newSpace()
	writer, err := env.open(stackSpec{redis: true, space: space})
	if err != nil {
		return nil, err
	}
	defer writer.Close()
	o := &origin{d: loadTime}
	for _, delay := range []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond} {
		p.SetDelay(0)
		st, err := env.open(stackSpec{memory: true, redis: true, via: p, timeout: timeout, space: space,
			opts: []layercache.Option{layercache.WithDegradation(layercache.Degradation{
				Timeout: timeout, FailureThreshold: 1 << 30, RetryAfter: time.Hour})}})
		if err != nil {
			return nil, err
		}
		row, err := slowRedisRow(ctx, st, writer, p, o, delay, reads)
		st.Close()
		if err != nil {
			return nil, err
		}
		t.row(row...)
	}
	t.Notes = []string{
		"The memory hit does not touch Redis, so its latency does not move.",
		fmt.Sprintf("Past the %v timeout a Redis read counts as a miss and the loader runs: a 500 ms Redis costs a read about timeout + loader time, not 500 ms.", timeout),
		"The value loaded after a cold miss is written to Redis in the background: the caller does not wait for it.",
	}
	return t, nil
}

func slowRedisRow(ctx context.Context, st, writer *benchStack, p *proxy, o *origin, delay time.Duration, reads int) ([]string, error) {
	tag := strconv.Itoa(int(delay.Milliseconds()))
	hotKey := "hot:" + tag
	if _, err := layercache.Get(ctx, st.Cache, hotKey, o.load(0), minuteTTL); err != nil {
		return nil, err
	}
	for i := range reads {
		if err := layercache.Set(ctx, writer.Cache, fmt.Sprintf("l2:%s:%d", tag, i), item{ID: i}, minuteTTL); err != nil {
			return nil, err
		}
	}
	p.SetDelay(delay)
	hot, err := measure(10_000, func() error { _, err := layercache.Get(ctx, st.Cache, hotKey, o.load(0), minuteTTL); return err })
	if err != nil {
		return nil, err
	}
	loadsBefore := o.calls.Load()
	i := 0
	l2, err := measure(reads, func() error {
		_, err := layercache.Get(ctx, st.Cache, fmt.Sprintf("l2:%s:%d", tag, i), o.load(i), minuteTTL)
		i++
		return err
	})
	if err != nil {
		return nil, err
	}
	fellBack := o.calls.Load() - loadsBefore
	i = 0
	cold, err := measure(reads, func() error {
		_, err := layercache.Get(ctx, st.Cache, fmt.Sprintf("cold:%s:%d", tag, i), o.load(i), minuteTTL)
		i++
		return err
	})
	if err != nil {
		return nil, err
	}
	added := "none"
	if delay > 0 {
		added = fmtDur(delay)
	}
	return []string{added, fmtDur(hot.mean()), fmtDur(l2.pct(50)), fmtDur(cold.pct(50)), fmt.Sprintf("%d of %d", fellBack, reads)}, nil
}

func benchDeadRedis(ctx context.Context, env *benchEnv) (*table, error) {
	const timeout, loadTime, misses = 100 * time.Millisecond, 10 * time.Millisecond, 20
	t := &table{
		Description: fmt.Sprintf("Memory + Redis with the default degradation settings (timeout %v, breaker opens after 5 failures "+
			"in a row, retries after 10 s). Redis then stops answering (connections stay open, nothing comes back, as with a "+
			"paused server). Warm keys are in memory; %d cold keys follow one another, %v loader each.", timeout, misses, loadTime),
		Columns: []string{"read", "latency", "loader alone"},
	}
	p, err := newProxy(env.redis.Addr)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	st, err := env.open(stackSpec{memory: true, redis: true, via: p, timeout: timeout})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	o := &origin{d: loadTime}
	if _, err := layercache.Get(ctx, st.Cache, "warm", o.load(0), minuteTTL); err != nil {
		return nil, err
	}
	p.SetStalled(true)
	defer p.SetStalled(false)
	warm, err := measure(10_000, func() error { _, err := layercache.Get(ctx, st.Cache, "warm", o.load(0), minuteTTL); return err })
	if err != nil {
		return nil, err
	}
	alone, err := measure(5, func() error { _, err := o.load(0)(ctx); return err })
	if err != nil {
		return nil, err
	}
	var closed, open samples
	openedAt := 0
	for i := range misses {
		s, err := measure(1, func() error {
			_, err := layercache.Get(ctx, st.Cache, "cold:"+strconv.Itoa(i), o.load(i), minuteTTL)
			return err
		})
		if err != nil {
			return nil, err
		}
		if openedAt > 0 {
			open = append(open, s...)
		} else {
			closed = append(closed, s...)
		}
		if openedAt == 0 && st.Stats().Layers[1].Breaker == layercache.BreakerOpen {
			openedAt = i + 1
		}
	}
	t.row("warm hit (memory), mean of 10,000", fmtDur(warm.mean()), "-")
	t.row("first cold miss", fmtDur(closed[0]), fmtDur(alone.pct(50)))
	if len(closed) > 1 {
		t.row(fmt.Sprintf("cold misses 2-%d, breaker closed (median)", len(closed)), fmtDur(closed[1:].pct(50)), fmtDur(alone.pct(50)))
	}
	if len(open) > 0 {
		t.row(fmt.Sprintf("cold misses %d-%d, breaker open (median / max)", openedAt+1, misses), fmtDur(open.pct(50))+" / "+fmtDur(open.max()), fmtDur(alone.pct(50)))
	}
	note := "The breaker did not open within the run."
	if openedAt > 0 {
		note = fmt.Sprintf("The breaker opened during cold miss %d (reads and the background writes after loads both count as failures); from then on Redis is skipped and a miss costs the loader alone.", openedAt)
	}
	t.Notes = []string{note}
	return t, nil
}

func benchQueue(ctx context.Context, env *benchEnv) (*table, error) {
	const delay, timeout, loadTime, many, few = 100 * time.Millisecond, 250 * time.Millisecond, time.Millisecond, 500, 10
	t := &table{
		Description: fmt.Sprintf("Reads of keys held only in Redis, behind a proxy adding %v to each reply, one at a time and %d at once, "+
			"through go-redis's default pool (10 connections per CPU). A raw go-redis GET queues for a connection without bound; "+
			"layercache bounds each operation by its timeout (%v here, pool wait included) and falls back to the loader (%v).",
			delay, many, timeout, loadTime),
		Columns: []string{"reader", "concurrency", "p50", "p99", "max", "served by Redis", "served by the loader"},
	}
	p, err := newProxy(env.redis.Addr)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	space := env.newSpace()
	writer, err := env.open(stackSpec{redis: true, space: space})
	if err != nil {
		return nil, err
	}
	for i := range many + few {
		if err := layercache.Set(ctx, writer.Cache, "q:"+strconv.Itoa(i), item{ID: i}, minuteTTL); err != nil {
			writer.Close()
			return nil, err
		}
	}
	writer.Close()
	p.SetDelay(delay)

	for _, n := range []int{few, many} {
		st, err := env.open(stackSpec{memory: true, redis: true, via: p, timeout: timeout, space: space})
		if err != nil {
			return nil, err
		}
		// One connection made before the clock starts: connecting takes
		// several round trips through the proxy.
		if err := st.client.Ping(ctx).Err(); err != nil {
			st.Close()
			return nil, err
		}
		o := &origin{d: loadTime}
		read := func(i int) error {
			_, err := layercache.Get(ctx, st.Cache, "q:"+strconv.Itoa(i), o.load(i), minuteTTL)
			return err
		}
		var s samples
		if n == few {
			i := 0
			s, err = measure(n, func() error { i++; return read(i - 1) })
		} else {
			s, _, err = concurrently(n, func(i int) error { return read(few + i) })
		}
		hits := st.Stats().Layers[1].Hits
		st.Close()
		if err != nil {
			return nil, err
		}
		conc := "1"
		if n == many {
			conc = strconv.Itoa(n)
		}
		t.row("layercache, memory + Redis", conc, fmtDur(s.pct(50)), fmtDur(s.pct(99)), fmtDur(s.max()),
			strconv.FormatUint(hits, 10), strconv.FormatInt(o.calls.Load(), 10))
	}
	raw := env.rawClient(p.Addr(), 0)
	defer raw.Close()
	if err := raw.Ping(ctx).Err(); err != nil {
		return nil, err
	}
	for _, n := range []int{few, many} {
		// The same records layercache reads, fetched as plain strings.
		get := func(i int) error { return raw.Get(ctx, space+":q:"+strconv.Itoa(i)).Err() }
		var s samples
		if n == few {
			i := 0
			s, err = measure(n, func() error { i++; return get(i - 1) })
		} else {
			s, _, err = concurrently(n, func(i int) error { return get(few + i) })
		}
		if err != nil {
			return nil, err
		}
		conc := "1"
		if n == many {
			conc = strconv.Itoa(n)
		}
		t.row("raw go-redis GET", conc, fmtDur(s.pct(50)), fmtDur(s.pct(99)), fmtDur(s.max()), strconv.Itoa(n), "-")
	}
	t.Notes = []string{
		"With 20 connections and 100 ms per round trip, 500 raw GETs take 25 round trips: the last caller waits about 2.5 s. That queue is what a cache in front of a slow Redis must not inherit.",
		"layercache's reads that could not get a connection within the timeout count as failures; after 5 the breaker opens and the rest go straight to the loader.",
	}
	return t, nil
}
