package layercache

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/layercache/layercache/driver"
)

// Set stores v under key in every layer and then tells the other instances,
// which drop their in-process copies. A load of key that is running when Set
// is called does not overwrite v with its older result.
//
// Set writes every layer before it returns. Failures are returned as
// [*LayerError]s joined with errors.Join; the layers that did not fail hold
// v. A layer skipped by its open circuit breaker fails with
// [ErrLayerUnavailable].
func Set[V any](ctx context.Context, c *Cache, key string, v V, opts ...EntryOption) (err error) {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.scope != nil {
		key = c.scopedKey(ctx, key)
	}
	op := Operation{Kind: OpSet, Key: key}
	ctx = c.begin(ctx, op)
	defer func() { c.finish(ctx, op, Outcome{Err: err}) }()
	eo := c.defaults.with(opts)
	if err := eo.validate(); err != nil {
		return err
	}
	eo.tags = c.scopedAll(ctx, eo.tags)
	if c.clone { // the cache keeps its own copy; the caller may change v
		if v, err = cloneValue(c.codec, v); err != nil {
			return err
		}
	}
	mem, wire, err := c.entries(v, false, &eo)
	if err != nil {
		return err
	}
	c.sets.Add(1)
	keys := []string{key}
	return c.apply(ctx,
		func() { c.flights.invalidateKeys(keys) },
		func(l *layer) error {
			if l.inProcess {
				return l.set(ctx, key, mem)
			}
			return l.set(ctx, key, wire)
		},
		driver.Message{Op: driver.OpSet, Keys: keys})
}

func isNil(err error) bool { return err == nil }

// entries builds the in-process and the encoded entry for a value.
func (c *Cache) entries(v any, negative bool, eo *entryOptions) (mem, wire *driver.Entry, err error) {
	ttl := eo.ttl
	switch {
	case negative:
		ttl = eo.negativeTTL
	case eo.align > 0:
		ttl = eo.untilBoundary(time.Now())
	}
	if eo.jitter > 0 && ttl > 0 && (negative || eo.align == 0) {
		ttl -= time.Duration(rand.Float64() * eo.jitter * float64(ttl))
	}
	mem = &driver.Entry{Tags: slices.Clone(eo.tags), Negative: negative}
	if ttl > 0 {
		now := time.Now().UnixNano()
		mem.StaleAt = deadline(now, ttl)
		mem.ExpiresAt = mem.StaleAt
		if !negative {
			mem.ExpiresAt = deadline(mem.StaleAt, eo.staleWindow())
		}
	}
	if eo.slidingIdle > 0 && !negative {
		// Fresh for the idle window, kept (and slid) up to max.
		now := time.Now().UnixNano()
		mem.StaleAt = deadline(now, min(eo.slidingIdle, eo.slidingMax))
		mem.ExpiresAt = deadline(deadline(now, eo.slidingMax), eo.staleWindow())
	}
	if !negative {
		mem.Value = v
	}
	wire, err = c.encodeEntry(v, mem)
	return mem, wire, err
}

// encodeEntry returns the encoded twin of an in-process entry.
func (c *Cache) encodeEntry(v any, mem *driver.Entry) (*driver.Entry, error) {
	wire := &driver.Entry{StaleAt: mem.StaleAt, ExpiresAt: mem.ExpiresAt, Tags: mem.Tags, Negative: mem.Negative}
	if mem.Negative || !c.hasRemote() {
		return wire, nil
	}
	payload, codec, err := encodeValue(c.codec, v)
	if err != nil {
		return nil, err
	}
	wire.Payload, wire.Codec = payload, codec
	return wire, nil
}

func (c *Cache) hasRemote() bool {
	for _, l := range c.layers {
		if !l.inProcess {
			return true
		}
	}
	return false
}

// store writes a loaded value (or absence) to the layers. In-process layers
// are written now; the others now under WithStrictWrites, with a
// coordinator (whose lock must not be released before the shared layers
// hold the value) or when no layer is in-process, else in the background.
// It reports whether background writes are pending, in which case cl stays
// guarded until they are done.
func (c *Cache) store(ctx context.Context, cl *call, key string, v any, negative bool, eo *entryOptions) (pending bool) {
	job, now := c.storeInProcess(ctx, cl, key, v, negative, eo)
	switch {
	case job.layers == nil:
		return false
	case now:
		c.writeRemote(context.WithoutCancel(ctx), cl, key, job.layers, job.entry)
		return true // guarded for the grace period, as a background write
	}
	return c.enqueue(ctx, job)
}

// storeInProcess is the first half of store: it writes the in-process
// layers and returns the write the others need (none when job.layers is
// nil), and whether it must happen before the callers go on.
func (c *Cache) storeInProcess(ctx context.Context, cl *call, key string, v any, negative bool, eo *entryOptions) (job writeJob, now bool) {
	if negative && eo.negativeTTL == 0 {
		return writeJob{}, false
	}
	if eo.adaptiveMax > 0 && !negative {
		adapted := *eo
		adapted.ttl = c.adaptiveTTL(key, eo.ttl, eo.adaptiveMax)
		eo = &adapted
	}
	mem, wire, err := c.entries(v, negative, eo)
	if err != nil {
		c.logger.Warn("layercache: value cannot be encoded; kept in process only", "key", key, "err", err)
	}
	var remote []*layer
	inProcess := false
	for _, l := range c.layers {
		if l.inProcess {
			_ = c.writeGuarded(ctx, cl, key, []*layer{l}, mem)
			inProcess = true
		} else if wire != nil {
			remote = append(remote, l)
		}
	}
	if len(remote) == 0 {
		return writeJob{}, false
	}
	cl.wire = wire // read by an undo only after the write ended
	// With nothing in process to serve the value meanwhile, a background
	// write would only make the next read load again.
	return writeJob{call: cl, key: key, layers: remote, entry: wire}, c.strictWrites || c.coordinator != nil || !inProcess
}

// forget removes key from every layer and tells the other instances, for a
// load that found the value gone when absences are not cached.
func (c *Cache) forget(ctx context.Context, key string) {
	keys := []string{key}
	err := c.apply(ctx,
		func() { c.flights.invalidateKeys(keys) },
		func(l *layer) error { return l.del(ctx, keys) },
		driver.Message{Op: driver.OpDelete, Keys: keys})
	if err != nil {
		c.logger.Debug("layercache: cannot remove a value its loader found gone", "key", key, "err", err)
	}
}

// Delete removes keys from every layer, then tells the other instances. A
// load of one of the keys that is running does not write its result back.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 && !c.closed.Load() {
		return nil
	}
	keys = c.scopedAll(ctx, keys)
	c.deletedKeys.Add(uint64(len(keys)))
	return c.invalidate(ctx, Operation{Kind: OpDelete, Keys: keys},
		func() { c.flights.invalidateKeys(keys) },
		func(ctx context.Context, l *layer) error { return l.del(ctx, keys) },
		driver.Message{Op: driver.OpDelete, Keys: keys})
}

// InvalidateTags removes every entry carrying one of tags from every layer,
// then tells the other instances to do the same in their private layers.
func (c *Cache) InvalidateTags(ctx context.Context, tags ...string) error {
	if len(tags) == 0 && !c.closed.Load() {
		return nil
	}
	tags = c.scopedAll(ctx, tags)
	c.invalidatedTags.Add(uint64(len(tags)))
	return c.invalidate(ctx, Operation{Kind: OpInvalidateTags, Tags: tags},
		func() { c.flights.invalidateTags(tags) },
		func(ctx context.Context, l *layer) error { return l.invalidateTags(ctx, tags) },
		driver.Message{Op: driver.OpInvalidate, Tags: tags})
}

// Clear removes every entry from every layer (layers that share a server
// clear only their own prefix), then tells the other instances to clear
// their private layers.
//
// On a namespace view, Clear rotates the namespace ([Cache.Rotate]): its
// entries become unreachable everywhere and expire on their own.
func (c *Cache) Clear(ctx context.Context) error {
	if c.scope != nil {
		return c.Rotate(ctx)
	}
	c.clears.Add(1)
	return c.invalidate(ctx, Operation{Kind: OpClear},
		func() { c.flights.invalidateAll() },
		func(ctx context.Context, l *layer) error { return l.clear(ctx) },
		driver.Message{Op: driver.OpClear})
}

// invalidate is the shape of Delete, InvalidateTags and Clear: guard the
// loads in flight, apply the change to every layer, and publish it once the
// shared layers hold it. Failures are joined *LayerErrors; the layers that
// did not fail are changed.
func (c *Cache) invalidate(ctx context.Context, op Operation, guard func(), apply func(context.Context, *layer) error, m driver.Message) (err error) {
	if c.closed.Load() {
		return ErrClosed
	}
	ctx = c.begin(ctx, op)
	defer func() { c.finish(ctx, op, Outcome{Err: err}) }()
	return c.apply(ctx, guard, func(l *layer) error { return apply(ctx, l) }, m)
}

// apply makes a change (m says which) in every layer so that no read running
// meanwhile can put an older value back, then tells the other instances:
// guard marks the loads and reads in flight, then the layers outside the
// process change, then guard marks again the reads that started meanwhile
// (they may have read the older value there), and only then do the
// in-process layers change. What fails on a layer outside the process or on
// the bus is journaled and replayed once it is back. It returns the
// failures, joined *LayerErrors.
func (c *Cache) apply(ctx context.Context, guard func(), change func(*layer) error, m driver.Message) error {
	var errs []error
	var failed uint64
	guard()
	for _, l := range c.layers {
		if l.inProcess {
			continue
		}
		if err := change(l); err != nil {
			errs = append(errs, err)
			if journalable(err) && l.index < maxJournaledLayers {
				failed |= 1 << l.index
			}
		}
	}
	guard()
	for _, l := range c.layers {
		if l.inProcess {
			errs = append(errs, change(l))
		}
	}
	perr := c.publish(ctx, m)
	errs = append(errs, perr)
	if lost := c.journal.record(m, failed, perr != nil); lost > 0 {
		c.journalOverflow(ctx, lost)
	}
	return joinErrors(slices.DeleteFunc(errs, isNil))
}

// journalable says whether a failed change must be replayed: a layer that
// refused the value (and removed the older one) or that does not offer the
// operation will not do better later.
func journalable(err error) bool {
	return !errors.Is(err, driver.ErrRefused) && !errors.Is(err, errUnsupported)
}

// journalOverflow is the fallback when failed invalidations cannot be kept:
// the loss is counted, and this instance drops what it holds in process, so
// that at least it does not keep serving values it may have read before
// the lost changes. It says so and drops once per overflow, not once per
// lost change: a long outage under heavy writes must not empty memory on
// every write and send every read to the origin.
func (c *Cache) journalOverflow(ctx context.Context, lost int) {
	c.journal.lost.Add(uint64(lost))
	c.event(ctx, Event{Kind: EventJournalLost})
	if !c.journal.overflowing.CompareAndSwap(false, true) {
		return
	}
	c.logger.Warn("layercache: invalidation journal is full; failed invalidations are lost and in-process layers are dropped",
		"lost", lost, "limit", c.journal.limit)
	var inProcess []*layer
	for _, l := range c.layers {
		if l.inProcess {
			inProcess = append(inProcess, l)
		}
	}
	c.drop(inProcess)
}
