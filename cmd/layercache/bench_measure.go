package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// samples are the durations of single operations.
type samples []time.Duration

// measure runs fn n times and times each call. Every timing includes one
// clock read, 20-80 ns depending on the machine.
func measure(n int, fn func() error) (samples, error) {
	s := make(samples, n)
	for i := range n {
		start := time.Now()
		if err := fn(); err != nil {
			return nil, err
		}
		s[i] = time.Since(start)
	}
	return s, nil
}

func (s samples) mean() time.Duration {
	if len(s) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return sum / time.Duration(len(s))
}

// pct returns the p-th percentile (0 < p <= 100), nearest rank.
func (s samples) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s samples) max() time.Duration {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

// concurrently runs fn(i) for i in [0, n) on n goroutines released at
// once, and returns each call's duration and the time until all returned.
func concurrently(n int, fn func(i int) error) (samples, time.Duration, error) {
	s := make(samples, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	release := make(chan struct{})
	ready.Add(n)
	for i := range n {
		done.Go(func() {
			ready.Done()
			<-release
			start := time.Now()
			errs[i] = fn(i)
			s[i] = time.Since(start)
		})
	}
	ready.Wait()
	start := time.Now()
	close(release)
	done.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return s, took, nil
}

// item is the value the benchmarks cache: a small record, as a database
// row would be.
type item struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Price float64  `json:"price"`
	Tags  []string `json:"tags"`
}

// origin is the slow source the cache stands in front of: it takes d and
// counts its calls. With a pool, it serves at most cap(pool) calls at once,
// as a database behind a connection pool does.
type origin struct {
	d     time.Duration
	pool  chan struct{}
	calls atomic.Int64
}

func (o *origin) load(id int) func(context.Context) (item, error) {
	return func(ctx context.Context) (item, error) {
		o.calls.Add(1)
		if o.pool != nil {
			select {
			case o.pool <- struct{}{}:
				defer func() { <-o.pool }()
			case <-ctx.Done():
				return item{}, ctx.Err()
			}
		}
		if o.d > 0 {
			t := time.NewTimer(o.d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return item{}, ctx.Err()
			}
		}
		return item{ID: id, Name: fmt.Sprintf("item %d", id), Price: 9.99, Tags: []string{"catalog"}}, nil
	}
}

// ratio prints a/b as "12.3x".
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	r := float64(a) / float64(b)
	if r >= 100 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.3gx", r)
}
