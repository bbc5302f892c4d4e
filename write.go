package layercache

import (
	"context"
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
	op := Operation{Kind: OpSet, Key: key}
	ctx = c.begin(ctx, op)
	defer func() { c.finish(ctx, op, Outcome{Err: err}) }()
	eo := c.defaults.with(opts)
	if err := eo.validate(); err != nil {
		return err
	}
	c.flights.invalidateKeys([]string{key})
	mem, wire, err := c.entries(v, false, &eo)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range c.layers {
		e := wire
		if l.inProcess {
			e = mem
		}
		if err := l.set(ctx, key, e); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.publish(ctx, driver.Message{Op: driver.OpSet, Keys: []string{key}}))
	return joinErrors(slices.DeleteFunc(errs, isNil))
}

func isNil(err error) bool { return err == nil }

// entries builds the in-process and the encoded entry for a value.
func (c *Cache) entries(v any, negative bool, eo *entryOptions) (mem, wire *driver.Entry, err error) {
	ttl := eo.ttl
	if negative {
		ttl = eo.negativeTTL
	}
	if eo.jitter > 0 && ttl > 0 {
		ttl -= time.Duration(rand.Float64() * eo.jitter * float64(ttl))
	}
	mem = &driver.Entry{Tags: slices.Clone(eo.tags), Negative: negative}
	if ttl > 0 {
		now := time.Now().UnixNano()
		mem.StaleAt = now + int64(ttl)
		mem.ExpiresAt = mem.StaleAt
		if !negative {
			mem.ExpiresAt += int64(eo.staleWindow())
		}
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
// hold the value) or when no layer is in-process, else in the background. It reports whether background writes are
// pending, in which case cl stays guarded until they are done.
func (c *Cache) store(ctx context.Context, cl *call, key string, v any, negative bool, eo *entryOptions) (pending bool) {
	if negative && eo.negativeTTL == 0 {
		return false
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
		return false
	}
	// With nothing in process to serve the value meanwhile, a background
	// write would only make the next read load again.
	if c.strictWrites || c.coordinator != nil || !inProcess {
		_ = c.writeGuarded(context.WithoutCancel(ctx), cl, key, remote, wire)
		return false
	}
	cl.wire = wire // read by an undo only after the write ended
	return c.enqueue(ctx, writeJob{call: cl, key: key, layers: remote, entry: wire})
}

// Delete removes keys from every layer, then tells the other instances. A
// load of one of the keys that is running does not write its result back.
func (c *Cache) Delete(ctx context.Context, keys ...string) (err error) {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(keys) == 0 {
		return nil
	}
	op := Operation{Kind: OpDelete, Keys: keys}
	ctx = c.begin(ctx, op)
	defer func() { c.finish(ctx, op, Outcome{Err: err}) }()
	c.flights.invalidateKeys(keys)
	var errs []error
	for _, l := range c.layers {
		errs = append(errs, l.del(ctx, keys))
	}
	errs = append(errs, c.publish(ctx, driver.Message{Op: driver.OpDelete, Keys: keys}))
	return joinErrors(slices.DeleteFunc(errs, isNil))
}

// InvalidateTags removes every entry carrying one of tags from every layer,
// then tells the other instances to do the same in their in-process layers.
func (c *Cache) InvalidateTags(ctx context.Context, tags ...string) (err error) {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(tags) == 0 {
		return nil
	}
	op := Operation{Kind: OpInvalidateTags, Tags: tags}
	ctx = c.begin(ctx, op)
	defer func() { c.finish(ctx, op, Outcome{Err: err}) }()
	c.flights.invalidateTags(tags)
	var errs []error
	for _, l := range c.layers {
		errs = append(errs, l.invalidateTags(ctx, tags))
	}
	errs = append(errs, c.publish(ctx, driver.Message{Op: driver.OpInvalidate, Tags: tags}))
	return joinErrors(slices.DeleteFunc(errs, isNil))
}

// Clear removes every entry from every layer (layers that share a server
// clear only their own prefix), then tells the other instances to clear
// their in-process layers.
func (c *Cache) Clear(ctx context.Context) (err error) {
	if c.closed.Load() {
		return ErrClosed
	}
	op := Operation{Kind: OpClear}
	ctx = c.begin(ctx, op)
	defer func() { c.finish(ctx, op, Outcome{Err: err}) }()
	c.flights.invalidateAll()
	var errs []error
	for _, l := range c.layers {
		errs = append(errs, l.clear(ctx))
	}
	errs = append(errs, c.publish(ctx, driver.Message{Op: driver.OpClear}))
	return joinErrors(slices.DeleteFunc(errs, isNil))
}
