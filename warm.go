package layercache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
)

// defaultWarmConcurrency is WarmOptions.Concurrency's default: loaders
// usually wait on a database or a service, so a few run side by side
// without the origin noticing.
const defaultWarmConcurrency = 8

// WarmItem is one value for [Cache.Warm] to load. Build it with [WarmFunc],
// which keeps the value's type; Key and Priority may be changed afterwards.
// A WarmItem made otherwise has no loader, and Warm refuses it.
type WarmItem struct {
	// Key is the key the value is cached under.
	Key string

	// Priority orders the warm: items of higher priority start first,
	// items of equal priority in the order given. Default: 0.
	Priority int

	// warm loads the item into c under key. It is set by WarmFunc, which
	// alone knows the value's type.
	warm func(ctx context.Context, c *Cache, key string, refresh bool) (warmResult, error)
}

// WarmFunc returns the item that warms key with load, whose value is stored
// with opts, exactly as [Get] with the same arguments would store it.
// Reading the key back with Get[V] or [Lookup][V] then hits in every layer,
// the in-process ones included. opts are copied.
func WarmFunc[V any](key string, load func(context.Context) (V, error), opts ...EntryOption) WarmItem {
	if load == nil {
		return WarmItem{Key: key} // refused by Warm, with the item's index
	}
	opts = slices.Clone(opts)
	return WarmItem{
		Key: key,
		warm: func(ctx context.Context, c *Cache, key string, refresh bool) (warmResult, error) {
			if refresh {
				return refreshOne(ctx, c, key, load, opts)
			}
			return warmOne(ctx, c, key, load, opts)
		},
	}
}

// WarmOptions configure [Cache.Warm]. The zero value is usable.
type WarmOptions struct {
	// Concurrency is how many items load at the same time. Default: 8.
	// Negative is an error.
	Concurrency int

	// ContinueOnError goes on with the other items when one fails. By
	// default the first failure stops the warm: no further item starts,
	// the ones already loading finish, and the rest are counted in
	// WarmReport.Abandoned.
	ContinueOnError bool

	// Refresh loads every item, also those cached fresh, and stores the
	// value as [Set] does: in every layer before the item counts as
	// loaded, telling the other instances to drop their copies. A layer
	// that cannot be written makes the item fail. A loader that returns
	// [ErrNotFound] has the key deleted. Refresh loads run outside the
	// single-flight of Get, and a loader's [SetEntryOptions] and
	// [DoNotStore] have no effect in them. By default an item already
	// cached fresh is skipped.
	Refresh bool

	// Progress, when set, is called with how many items are done (loaded,
	// skipped, not found or failed) out of the total: once with zero
	// before any item starts, then after each item, with done counting up
	// by one. It is called from the goroutine that called Warm, one call
	// at a time, and holds the warm up while it runs. An item abandoned
	// when the warm stops is not done: done then ends below total.
	Progress func(done, total int)
}

// WarmReport counts what [Cache.Warm] did with each item: Loaded, Skipped,
// NotFound, Failed and Abandoned add up to Total.
type WarmReport struct {
	Total int

	// Loaded items had their loader run by this warm and its value stored.
	Loaded int

	// Skipped items were already cached fresh, or cached absent, in some
	// layer, or were being loaded by another caller that this warm then
	// shared the result of: their loader did not run. A value found in a
	// lower layer was copied into the layers above it, as by a read.
	Skipped int

	// NotFound items had their loader return [ErrNotFound]: the absence
	// is cached for the negative TTL, as Get does.
	NotFound int

	// Failed items had their loader, or the cache, return an error; each
	// is in Errors. A failed refresh of a key whose stale value the
	// cache still serves (stale-if-error) counts here too.
	Failed int

	// Abandoned items were not warmed because the warm stopped first: on
	// a failure without ContinueOnError, or because ctx ended (an item
	// that was loading then counts here, not as failed).
	Abandoned int

	// Errors holds one [*WarmError] per failed item, in the order the
	// items started.
	Errors []error
}

// WarmError is the failure of one item of a warm.
type WarmError struct {
	Key string
	Err error
}

func (e *WarmError) Error() string {
	return fmt.Sprintf("layercache: warm %q: %v", e.Key, e.Err)
}

func (e *WarmError) Unwrap() error { return e.Err }

// warmResult is what became of one item.
type warmResult int8

const (
	warmLoaded warmResult = iota
	warmSkipped
	warmNotFound
	warmFailed
	warmAbandoned
)

// Warm loads items into the cache before they are asked for, typically at
// start-up or after a deploy, Concurrency at a time, in order of Priority.
//
// Each item goes through [Get]: a key cached fresh in any layer is not
// loaded again (it is skipped, see [WarmReport]), concurrent Gets of the
// same key share the warm's load, and with a coordinator so do other
// instances. Values reach the layers outside the process as a Get's do, in
// the background unless the cache was created [WithStrictWrites]; Close
// waits for them. [WarmOptions].Refresh reloads cached keys too.
//
// Warm returns when every item is done, or when it stopped early (a failure
// without ContinueOnError, or the end of ctx); loads it started have ended
// by then. The error is nil when no item failed and none was abandoned;
// otherwise it joins ctx's error, if ctx ended before every item was done,
// and every item's [*WarmError], which are also in the report. Items that
// Warm refuses (a negative concurrency, an item without a loader) and a
// closed cache fail the whole warm before anything is loaded.
func (c *Cache) Warm(ctx context.Context, items []WarmItem, o WarmOptions) (WarmReport, error) {
	r := WarmReport{Total: len(items), Abandoned: len(items)}
	if c.closed.Load() {
		return r, ErrClosed
	}
	concurrency := o.Concurrency
	switch {
	case concurrency < 0:
		return r, fmt.Errorf("layercache: warm concurrency %d is negative", concurrency)
	case concurrency == 0:
		concurrency = defaultWarmConcurrency
	}
	for i := range items {
		if items[i].warm == nil {
			return r, fmt.Errorf("layercache: warm item %d (key %q) has no loader: build items with WarmFunc", i, items[i].Key)
		}
	}

	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(items[b].Priority, items[a].Priority) })

	type finished struct {
		item   int
		result warmResult
		err    error
	}
	jobs := make(chan int)
	results := make(chan finished)
	var workers sync.WaitGroup
	defer func() {
		// Workers are idle by now, unless Progress panicked: then they
		// may be handing over results that must be taken, or they would
		// never return.
		close(jobs)
		go func() {
			workers.Wait()
			close(results)
		}()
		for range results {
		}
	}()
	for range min(concurrency, len(items)) {
		workers.Go(func() {
			for i := range jobs {
				res, err := items[i].warm(ctx, c, items[i].Key, o.Refresh)
				results <- finished{i, res, err}
			}
		})
	}

	progress := func(done int) {
		if o.Progress != nil {
			o.Progress(done, len(items))
		}
	}
	progress(0)
	errs := make([]error, len(items)) // by item, to report in start order
	next, running, done := 0, 0, 0
	stopped := false
	for {
		if !stopped && ctx.Err() != nil {
			stopped = true
		}
		if (stopped || next == len(order)) && running == 0 {
			break
		}
		// Nil channels are never chosen: once stopped, only results are
		// waited for.
		var send chan<- int
		var cancelled <-chan struct{}
		var i int
		if !stopped {
			cancelled = ctx.Done()
			if next < len(order) {
				send, i = jobs, order[next]
			}
		}
		select {
		case send <- i:
			next++
			running++
		case f := <-results:
			running--
			switch f.result {
			case warmLoaded:
				r.Loaded++
			case warmSkipped:
				r.Skipped++
			case warmNotFound:
				r.NotFound++
			case warmFailed:
				r.Failed++
				errs[f.item] = &WarmError{Key: items[f.item].Key, Err: f.err}
				stopped = stopped || !o.ContinueOnError
			case warmAbandoned:
				continue // not done
			}
			done++
			progress(done)
		case <-cancelled:
			stopped = true
		}
	}
	r.Abandoned = r.Total - r.Loaded - r.Skipped - r.NotFound - r.Failed
	var all []error
	if r.Abandoned > 0 && ctx.Err() != nil {
		all = append(all, ctx.Err())
	}
	for _, i := range order {
		if errs[i] != nil {
			r.Errors = append(r.Errors, errs[i])
		}
	}
	all = append(all, r.Errors...)
	return r, errors.Join(all...)
}

// warmOne warms key through Get, and tells a load from a hit by whether
// Get called this item's loader.
func warmOne[V any](ctx context.Context, c *Cache, key string, load func(context.Context) (V, error), opts []EntryOption) (warmResult, error) {
	var ran atomic.Bool
	var loadErr atomic.Pointer[error]
	_, err := Get(ctx, c, key, func(ctx context.Context) (V, error) {
		ran.Store(true)
		v, err := load(ctx)
		loadErr.Store(&err)
		return v, err
	}, opts...)
	switch {
	case err != nil && ctx.Err() != nil:
		return warmAbandoned, err
	case errors.Is(err, ErrNotFound):
		if ran.Load() {
			return warmNotFound, nil
		}
		return warmSkipped, nil // a cached absence
	case err != nil:
		return warmFailed, err
	case !ran.Load():
		return warmSkipped, nil
	}
	if p := loadErr.Load(); p != nil && *p != nil {
		// The loader failed and Get served the stale value instead.
		return warmFailed, *p
	}
	return warmLoaded, nil
}

// refreshOne loads key whatever the cache holds and stores the value with
// Set, or deletes the key when the loader finds it gone.
func refreshOne[V any](ctx context.Context, c *Cache, key string, load func(context.Context) (V, error), opts []EntryOption) (warmResult, error) {
	v, err := callLoader(ctx, load)
	switch {
	case err != nil && ctx.Err() != nil:
		return warmAbandoned, err
	case errors.Is(err, ErrNotFound):
		if err := c.Delete(ctx, key); err != nil {
			return warmFailed, err
		}
		return warmNotFound, nil
	case err != nil:
		return warmFailed, err
	}
	if err := Set(ctx, c, key, v, opts...); err != nil {
		if ctx.Err() != nil {
			return warmAbandoned, err
		}
		return warmFailed, err
	}
	return warmLoaded, nil
}

// callLoader calls load, turning a panic into a *PanicError as Get does.
func callLoader[V any](ctx context.Context, load func(context.Context) (V, error)) (v V, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return load(ctx)
}
