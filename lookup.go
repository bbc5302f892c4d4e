package layercache

import (
	"context"
	"time"
)

// Lookup returns the fresh value cached under key without loading it: ok is
// false on a miss, on a cached absence and on a stale entry. A hit in a
// lower layer backfills the layers above it, as with [Get]. A failing layer
// is a miss there; err is set for a closed cache, a type mismatch, or a
// value that a cache created [WithClone] cannot copy.
func Lookup[V any](ctx context.Context, c *Cache, key string) (v V, ok bool, err error) {
	if c.closed.Load() {
		return v, false, ErrClosed
	}
	if c.scope != nil {
		key = c.scopedKey(ctx, key)
	}
	if c.observer == nil {
		if v, err, hit := freshL1[V](ctx, c, key, nil); hit {
			return v, err == nil, nil // a cached absence is not ok
		}
	}
	op := Operation{Kind: OpLookup, Key: key}
	ctx = c.begin(ctx, op)
	out := Outcome{Result: ResultMiss}
	defer func() { c.finish(ctx, op, out.with(err)) }()

	now := time.Now().UnixNano()
	guard := c.flights.guard(key)
	r, err := read[V](ctx, c, guard, key, now)
	if !r.queued {
		c.flights.release(guard)
	}
	if err != nil || r.layer < 0 || r.entry.Negative || !isFresh(r.entry, now) {
		return v, false, err
	}
	out.set(ResultHit, c.layers[r.layer].name)
	v, err = cloneIf(c, r.value)
	return v, err == nil, err
}
