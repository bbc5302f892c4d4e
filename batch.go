package layercache

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/layercache/layercache/driver"
)

// GetMany returns the values cached under keys, loading those that miss
// with one call of batch. Each layer is read once for all the keys still
// missing (one MGET per slot on Redis, one batch on disk); batch is given
// the keys no layer holds, in the order of keys, and returns the values it
// found: keys it leaves out are absent, cached as such for the negative TTL
// and missing from the result. The result holds the keys that have a
// value.
//
// Loads are single-flight per key with [Get]: a key being loaded by a Get
// or another GetMany is waited for, not loaded twice, and a Get of a key
// this GetMany is loading waits for it. An error of batch is returned (the
// values found in layers are returned with it) and cached for no key.
func GetMany[V any](ctx context.Context, c *Cache, keys []string, batch func(ctx context.Context, keys []string) (map[string]V, error), opts ...EntryOption) (map[string]V, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if batch == nil {
		return nil, errors.New("layercache: GetMany with a nil batch function")
	}
	eo := c.defaults.with(opts)
	if err := eo.validate(); err != nil {
		return nil, err
	}
	eo.tags = c.scopedAll(ctx, eo.tags)
	if c.scope == nil {
		return getMany(ctx, c, keys, batch, &eo)
	}
	stored := c.scopedAll(ctx, keys) // the keys as the layers know them
	byStored := make(map[string]string, len(keys))
	for i, k := range stored {
		byStored[k] = keys[i]
	}
	got, err := getMany(ctx, c, stored, func(ctx context.Context, missing []string) (map[string]V, error) {
		asked := make([]string, len(missing))
		for i, k := range missing {
			asked[i] = byStored[k]
		}
		found, err := batch(ctx, asked)
		if found == nil {
			return found, err
		}
		scoped := make(map[string]V, len(found))
		for i, k := range asked {
			if v, ok := found[k]; ok {
				scoped[missing[i]] = v
			}
		}
		return scoped, err
	}, &eo)
	out := make(map[string]V, len(got))
	for k, v := range got {
		out[byStored[k]] = v
	}
	return out, err
}

func dedupe(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// getMany is GetMany over stored keys.
func getMany[V any](ctx context.Context, c *Cache, keys []string, batch func(context.Context, []string) (map[string]V, error), eo *entryOptions) (map[string]V, error) {
	out := make(map[string]V, len(keys))
	now := time.Now().UnixNano()
	// Taken before anything is read: see the second read below.
	changes := c.flights.changes.Load()

	// Most batch reads find every key, and a read needs no flight: the
	// layers are read first, and only the keys still missing join theirs.
	rest, err := l1Hits(ctx, c, keys, out, now)
	if err != nil || len(rest) == 0 {
		return out, err
	}
	var guard *call
	if c.batchGuarded {
		guard = c.flights.guardMany(rest)
	}
	first := 0
	if c.l1 != nil {
		first = 1
	}
	rest = readMany(ctx, c, batchKeys{keys: rest}, guard, first, c.batchDepth, out, now).keys
	if guard != nil {
		c.flights.release(guard)
	}
	if len(rest) == 0 {
		return out, nil
	}

	rest = dedupe(rest)
	calls, lead := c.flights.joinMany(rest, eo.tags)
	mine := batchKeys{keys: make([]string, 0, len(rest)), calls: make([]*call, 0, len(rest))}
	var theirs []*call
	for i, cl := range calls {
		if lead[i] {
			mine.add(rest[i], cl)
		} else {
			theirs = append(theirs, cl)
		}
	}
	// Whatever happens below, no call this one leads may stay unsettled.
	defer c.flights.abandonMany(mine.calls)

	var loadErr error
	if len(mine.keys) > 0 {
		from := c.batchDepth
		if c.flights.changes.Load() != changes {
			// A load ended or a write landed while the layers were read,
			// perhaps of a key they did not have yet: read the keys
			// again, L1 included, rather than load one twice or over a
			// newer value.
			from = 0
		}
		missing := readMany(ctx, c, mine, nil, from, len(c.layers), out, now)
		if len(missing.keys) > 0 {
			loadErr = loadMany(ctx, c, missing, batch, out, eo)
		}
	}

	for _, cl := range theirs {
		early, err := cl.wait(ctx)
		if err != nil {
			return out, err
		}
		switch {
		case early: // its leader serves a value while it refreshes it
			if s := cl.served; s.err == nil {
				if v, ok := s.val.(V); ok {
					out[cl.key] = v
				}
			}
		case cl.abandoned:
			// Its leader left: load it alone, through the same batch.
			one := func(ctx context.Context) (V, error) {
				found, err := batch(ctx, []string{cl.key})
				if err != nil {
					var zero V
					return zero, err
				}
				v, ok := found[cl.key]
				if !ok {
					return v, ErrNotFound
				}
				return v, nil
			}
			if v, err := getCore(ctx, c, cl.key, one, nil, nil, nil); err == nil {
				out[cl.key] = v
			} else if !errors.Is(err, ErrNotFound) && loadErr == nil {
				loadErr = err
			}
		case cl.err == nil:
			v, err := callResult[V](c, cl)
			if err != nil {
				return out, err
			}
			out[cl.key] = v
		case !errors.Is(cl.err, ErrNotFound) && loadErr == nil:
			loadErr = cl.err
		}
	}
	return out, loadErr
}

// batchKeys are keys a GetMany reads, in order, with their calls when it
// leads them (calls is nil when it reads before joining any).
type batchKeys struct {
	keys  []string
	calls []*call
}

func (b *batchKeys) add(key string, cl *call) {
	b.keys = append(b.keys, key)
	if cl != nil {
		b.calls = append(b.calls, cl)
	}
}

// call returns the call of keys[i], or nil.
func (b *batchKeys) call(i int) *call {
	if b.calls == nil {
		return nil
	}
	return b.calls[i]
}

// l1Hits puts the plain fresh L1 hits among keys into out and returns the
// other keys, in order.
func l1Hits[V any](ctx context.Context, c *Cache, keys []string, out map[string]V, now int64) ([]string, error) {
	if c.l1 == nil {
		return keys, nil
	}
	rest := make([]string, 0, len(keys))
	hits := uint64(0)
	defer func() { c.l1.hits.add(hits) }()
	for _, k := range keys {
		e, _ := c.l1.Get(ctx, k)
		if e == nil || !isFresh(e, now) || e.Expired(now) {
			rest = append(rest, k)
			continue
		}
		hits++
		if e.Negative {
			c.negativeHits.add(1)
			continue
		}
		v, err := inProcessValue[V](c, k, e)
		if err != nil {
			return nil, err
		}
		if out[k], err = cloneIf(c, v); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

// readMany reads keys from layers[from:to], one batch per layer, puts the
// fresh values it finds into out, and returns the keys still missing, in
// order. When it is given the keys' calls it settles those of the keys
// found, and each call guards its key's backfill; otherwise guard does (it
// may be nil when no layer read has one above it to fill).
func readMany[V any](ctx context.Context, c *Cache, keys batchKeys, guard *call, from, to int, out map[string]V, now int64) batchKeys {
	missing := keys
	var found []settled[V]
	if keys.calls != nil {
		found = make([]settled[V], 0, len(keys.keys))
	}
	for i := from; i < to && len(missing.keys) > 0; i++ {
		l := c.layers[i]
		entries, err := l.getMany(ctx, missing.keys)
		if err != nil {
			continue // a miss in this layer, counted by the layer
		}
		var still batchKeys
		var hits, misses uint64
		found = found[:0]
		for j, k := range missing.keys {
			cl, e := missing.call(j), entries[j]
			if e != nil && !l.inProcess && c.journal.skips(i, k) {
				e = nil
			}
			if e == nil || e.Expired(now) || !isFresh(e, now) || (!l.inProcess && c.journal.skipsTags(i, e.Tags)) {
				misses++
				still.add(k, cl)
				continue
			}
			var v V
			if l.inProcess {
				v, err = inProcessValue[V](c, k, e)
			} else if !e.Negative {
				v, err = decodeValue[V](c.codec, e.Payload, e.Codec)
			}
			if err != nil {
				l.errors.Add(1)
				misses++
				still.add(k, cl)
				continue
			}
			hits++
			queued := false
			if i > 0 {
				if cl != nil {
					queued = backfill(ctx, c, cl, k, i, e, v)
				} else {
					backfill(ctx, c, guard, k, i, e, v) // never queues: see batchDepth
				}
			}
			if cl != nil {
				found = append(found, settled[V]{call: cl, val: v, err: negErr(e), keep: queued})
			}
			if !e.Negative {
				if out[k], err = cloneIf(c, v); err != nil {
					delete(out, k)
				}
			}
		}
		l.hits.add(hits)
		l.misses.add(misses)
		if len(found) > 0 {
			finishMany(c.flights, found)
		}
		missing = still
	}
	return missing
}

// loadMany loads the missing keys with one call of batch, stores what it
// returns (and the absences, for the negative TTL) and settles their calls.
func loadMany[V any](ctx context.Context, c *Cache, missing batchKeys, batch func(context.Context, []string) (map[string]V, error), out map[string]V, eo *entryOptions) error {
	c.loads.add(1)
	var found map[string]V
	err := c.origin.acquire(ctx)
	if err == nil {
		found, err = runBatch(ctx, batch, missing.keys)
		c.origin.release()
	}
	if err != nil {
		c.loadErrors.add(1)
		if ctx.Err() != nil {
			c.flights.abandonMany(missing.calls) // a waiter loads it instead
			return err
		}
		failed := make([]settled[V], len(missing.calls))
		for i, cl := range missing.calls {
			failed[i] = settled[V]{call: cl, err: err}
		}
		finishMany(c.flights, failed)
		return err
	}
	// A key is settled once it is stored: at once when the layers outside
	// the process are written in the background, else after the one batch
	// write of all the keys that need it.
	var now []writeJob
	var after []settled[any]
	for i, k := range missing.keys {
		cl := missing.calls[i]
		v, ok := found[k]
		var held any
		if ok {
			held = any(v)
			if c.clone {
				cp, err := cloneValue(c.codec, v)
				if err != nil {
					c.flights.finish(cl, nil, err, false)
					continue
				}
				held = cp
			}
			out[k] = v
		} else {
			c.notFound.add(1)
		}
		result := settled[any]{call: cl, val: held}
		if !ok {
			result.err = ErrNotFound
		}
		job, due := c.storeInProcess(ctx, cl, k, held, !ok, eo)
		switch {
		case job.layers == nil:
		case due:
			now = append(now, job)
			result.keep = true // guarded for the grace period
			after = append(after, result)
			continue
		default:
			result.keep = c.enqueue(ctx, job)
		}
		c.flights.finish(cl, result.val, result.err, result.keep)
	}
	c.writeRemoteMany(context.WithoutCancel(ctx), now)
	finishMany(c.flights, after)
	return nil
}

// runBatch calls batch, turning a panic into a *PanicError.
func runBatch[V any](ctx context.Context, batch func(context.Context, []string) (map[string]V, error), keys []string) (found map[string]V, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p}
		}
	}()
	return batch(ctx, slices.Clone(keys))
}

// getMany reads keys from the layer, in one round trip when it can.
func (l *layer) getMany(ctx context.Context, keys []string) ([]*driver.Entry, error) {
	bg, ok := l.Layer.(driver.BatchGetter)
	if !ok {
		out := make([]*driver.Entry, len(keys))
		for i, k := range keys {
			e, err := l.get(ctx, k)
			if err != nil {
				if !l.inProcess {
					continue // a miss for this key; counted by the layer
				}
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	var out []*driver.Entry
	err := l.do(ctx, "get", func(ctx context.Context) error {
		var err error
		out, err = bg.GetMany(ctx, keys)
		return err
	})
	if err == nil && len(out) != len(keys) {
		err = &LayerError{Op: "get", Layer: l.name, Err: errors.New("batch read returned the wrong number of entries")}
	}
	return out, err
}

// SetMany stores every value of items in every layer, in one round trip per
// layer where the layer can (a Redis pipeline, one disk transaction), then
// tells the other instances with one message. Running loads of the keys do
// not overwrite the values. Failures are returned as for [Set].
func SetMany[V any](ctx context.Context, c *Cache, items map[string]V, opts ...EntryOption) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(items) == 0 {
		return nil
	}
	eo := c.defaults.with(opts)
	if err := eo.validate(); err != nil {
		return err
	}
	eo.tags = c.scopedAll(ctx, eo.tags)
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	stored := c.scopedAll(ctx, keys)
	mems := make([]*driver.Entry, len(keys))
	wires := make([]*driver.Entry, len(keys))
	for i, k := range keys {
		v := items[k]
		if c.clone {
			var err error
			if v, err = cloneValue(c.codec, v); err != nil {
				return err
			}
		}
		var err error
		if mems[i], wires[i], err = c.entries(v, false, &eo); err != nil {
			return err
		}
	}
	c.sets.Add(uint64(len(keys)))
	return c.apply(ctx,
		func() { c.flights.invalidateKeys(stored) },
		func(l *layer) error {
			entries := wires
			if l.inProcess {
				entries = mems
			}
			return l.setMany(ctx, stored, entries)
		},
		driver.Message{Op: driver.OpSet, Keys: stored})
}

// setMany writes entries to the layer, in one round trip when it can.
func (l *layer) setMany(ctx context.Context, keys []string, entries []*driver.Entry) error {
	bs, ok := l.Layer.(driver.BatchSetter)
	if !ok {
		var errs []error
		for i, k := range keys {
			if err := l.set(ctx, k, entries[i]); err != nil {
				errs = append(errs, err)
			}
		}
		return joinErrors(errs)
	}
	return l.do(ctx, "set", func(ctx context.Context) error { return bs.SetMany(ctx, keys, entries) })
}
