package layercache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/prefix"
)

// Loader is a typed loader bound once to a cache and a key space: the ids it
// is asked for live under its prefix, and its load function is called for
// the ids that miss. Create it with [NewLoader].
//
// Use a Loader on hot paths, for background refresh and for batches; use
// [Get] for ad-hoc loads with a closure. Because a Loader's function
// outlives any one call, it can refresh in the background: with
// stale-while-revalidate or early refresh, every caller that finds the
// entry due for a refresh, in any layer, gets the current value at once,
// and the refresh runs on its own goroutine (bounded in number, each under
// a timeout: [WithBackgroundRefresh]). With Get, the caller that refreshes
// waits for its loader. A Loader hit, like a Get hit, allocates nothing.
type Loader[V any] struct {
	c      *Cache
	prefix string
	load   func(ctx context.Context, id string) (V, error)
	batch  func(ctx context.Context, ids []string) (map[string]V, error)
	opts   []EntryOption
	bg     *refresher
	keys   sync.Pool // *[]byte: where a hit builds its key
}

// The defaults of [WithBackgroundRefresh].
const (
	DefaultRefreshConcurrency = 16
	DefaultRefreshTimeout     = 10 * time.Second
)

// WithBatch gives a bound loader ([NewLoader]) the function that loads many
// ids in one call, for [Loader.GetMany]. Ids it leaves out of its map are
// absent (cached as such when negative caching is on). Its V must be the
// loader's; [NewLoader] panics otherwise. Other calls ignore it.
func WithBatch[V any](batch func(ctx context.Context, ids []string) (map[string]V, error)) EntryOption {
	return EntryOption{kind: optBatch, rare: &rareOption{batch: batch}}
}

// WithBackgroundRefresh bounds a bound loader's background refreshes: at
// most concurrency at once (more are left to a later hit), each cancelled
// after timeout. Default: 16 and 10s. Other calls ignore it.
func WithBackgroundRefresh(concurrency int, timeout time.Duration) EntryOption {
	return EntryOption{kind: optBackgroundRefresh, f: float64(concurrency), d: timeout}
}

// NewLoader binds load to c under prefix: Get(ctx, id) reads the key
// prefix+id and loads it with load(ctx, id) on a miss. opts apply to every
// entry the loader writes, after the cache's defaults; they may also carry
// [WithBatch] and [WithBackgroundRefresh]. NewLoader panics on a nil cache
// or function, or a batch function of another type: those are mistakes in
// the program, found when it starts.
func NewLoader[V any](c *Cache, prefix string, load func(ctx context.Context, id string) (V, error), opts ...EntryOption) *Loader[V] {
	if c == nil || load == nil {
		panic("layercache: NewLoader with a nil cache or load function")
	}
	l := &Loader[V]{c: c, prefix: prefix, load: load, bg: newRefresher(DefaultRefreshConcurrency, DefaultRefreshTimeout)}
	for _, o := range opts {
		switch o.kind {
		case optBatch:
			batch, ok := o.rare.batch.(func(context.Context, []string) (map[string]V, error))
			if !ok {
				var zero V
				panic(fmt.Sprintf("layercache: NewLoader[%T] given WithBatch of another type (%T)", zero, o.rare.batch))
			}
			l.batch = batch
		case optOriginBreaker:
			if o.f <= 0 || o.d <= 0 {
				panic("layercache: WithOriginBreaker needs a positive number of failures and retry delay")
			}
			l.load = guardedLoad(newBreaker(Degradation{FailureThreshold: int(o.f), RetryAfter: o.d}), l.load)
		case optBackgroundRefresh:
			if o.f <= 0 || o.d <= 0 {
				panic("layercache: WithBackgroundRefresh needs a positive concurrency and timeout")
			}
			l.bg = newRefresher(int(o.f), o.d)
		default:
			l.opts = append(l.opts, o)
		}
	}
	l.keys.New = func() any { b := make([]byte, 0, 64); return &b }
	return l
}

// Get returns the value of id, loading it on a miss. See [Loader] for how
// it differs from [Get].
func (l *Loader[V]) Get(ctx context.Context, id string) (V, error) {
	c := l.c
	if c.observer == nil && c.scope == nil {
		if v, err, ok := l.hit(ctx, id); ok {
			return v, err
		}
	}
	key := l.prefix + id
	if c.scope != nil {
		key = c.scopedKey(ctx, key)
	}
	load := l.loaderOf(id)
	return get(ctx, c, key, load, l.opts, &bound[V]{r: l.bg, load: load})
}

// hit answers a plain fresh L1 hit without allocating: layers must not
// keep the key Get is given, so the key is built in a buffer of the
// loader's. On the memory driver, whose Get the compiler can see does not
// keep it, that buffer is on the stack; on others it comes from a pool.
func (l *Loader[V]) hit(ctx context.Context, id string) (V, error, bool) {
	co := l.c.core
	if !co.plainHitReady(l.opts) {
		var zero V
		return zero, nil, false
	}
	var e *driver.Entry
	if mem := co.l1mem; mem != nil && len(l.prefix)+len(id) <= stackKeySize {
		var buf [stackKeySize]byte
		b := append(append(buf[:0], l.prefix...), id...)
		e, _ = mem.Get(ctx, unsafe.String(unsafe.SliceData(b), len(b)))
	} else {
		buf := l.keys.Get().(*[]byte)
		b := append(append((*buf)[:0], l.prefix...), id...)
		e, _ = co.l1.Get(ctx, unsafe.String(unsafe.SliceData(b), len(b)))
		*buf = b
		l.keys.Put(buf)
	}
	return plainHit[V](co, e)
}

// stackKeySize bounds the keys a loader hit builds on the stack.
const stackKeySize = 96

func (l *Loader[V]) loaderOf(id string) func(context.Context) (V, error) {
	return func(ctx context.Context) (V, error) { return l.load(ctx, id) }
}

// GetMany returns the values of ids, loading those that miss with the
// loader's batch function ([WithBatch]) in one call, or, without one, with
// its load function id by id. Ids without a value (the batch left them out,
// or load returned [ErrNotFound]) are missing from the result. See
// [GetMany] for how layers are read and loads shared.
func (l *Loader[V]) GetMany(ctx context.Context, ids []string) (map[string]V, error) {
	keys := prefix.All(l.prefix, ids)
	id := func(key string) string { return key[len(l.prefix):] }
	byKey, err := GetMany(ctx, l.c, keys, func(ctx context.Context, keys []string) (map[string]V, error) {
		asked := make([]string, len(keys))
		for i, k := range keys {
			asked[i] = id(k)
		}
		found, err := l.loadMany(ctx, asked)
		out := make(map[string]V, len(found))
		for i, a := range asked {
			if v, ok := found[a]; ok {
				out[keys[i]] = v
			}
		}
		return out, err
	}, l.opts...)
	out := make(map[string]V, len(byKey))
	for k, v := range byKey {
		out[id(k)] = v
	}
	return out, err
}

// loadMany loads ids with the batch function, or one by one.
func (l *Loader[V]) loadMany(ctx context.Context, ids []string) (map[string]V, error) {
	if l.batch != nil {
		return l.batch(ctx, ids)
	}
	out := make(map[string]V, len(ids))
	for _, id := range ids {
		v, err := l.load(ctx, id)
		switch {
		case err == nil:
			out[id] = v
		case !errors.Is(err, ErrNotFound):
			return out, err
		}
	}
	return out, nil
}
