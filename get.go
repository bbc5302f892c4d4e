package layercache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/layercache/layercache/driver"
)

// Get returns the value cached under key, loading it with loader on a miss.
//
// The layers are read in order; a hit in a lower layer backfills the layers
// above it with the entry's remaining lifetime. Concurrent misses of one key
// in this process run loader once: the first caller (the leader) runs it on
// its own goroutine with its own context, the others wait for its result. A
// waiter whose context ends returns the context's error at once and the load
// goes on for the others. If the leader's context ends and the loader
// returns because of it, the leader returns that error and one of the
// waiters takes the load over with its own loader, so no waiter inherits
// another caller's cancellation. A loader that panics gives every caller of
// that load a [*PanicError]; the process goes on.
//
// A loader that returns [ErrNotFound] (or an error wrapping it) has the
// absence cached for the negative TTL; Get then returns ErrNotFound. Other
// loader errors are returned as they are and not cached.
//
// Values from in-process layers are shared: every caller that hits the same
// entry receives the same value. Callers must not mutate it (nor anything it
// points to); a cache created [WithClone] hands out copies instead.
//
// An L1 hit neither decodes nor allocates, also when loader is a closure.
func Get[V any](ctx context.Context, c *Cache, key string, loader func(context.Context) (V, error), opts ...EntryOption) (V, error) {
	if c.scope != nil {
		key = c.scopedKey(ctx, key)
	}
	if c.observer == nil {
		if v, err, ok := freshL1[V](ctx, c, key, opts); ok {
			return v, err
		}
	}
	return get(ctx, c, key, loader, opts, nil)
}

// freshL1 answers a read from an in-process first layer when the entry
// there is plainly fresh, which is most reads.
func freshL1[V any](ctx context.Context, c *Cache, key string, opts []EntryOption) (V, error, bool) {
	co := c.core
	if !co.plainHitReady(opts) {
		var zero V
		return zero, nil, false
	}
	e, _ := co.l1.Get(ctx, key)
	return plainHit[V](co, e)
}

// plainHitReady reports whether a read with opts may be answered by
// plainHit.
func (co *core) plainHitReady(opts []EntryOption) bool {
	return co.l1 != nil && co.plainHits && !co.closed.Load() && !hasHitWork(opts)
}

// plainHit answers a read with e, the entry L1 holds, when it is plainly
// fresh. An entry without a stale window is fresh exactly when the layer
// returns it (layers return only live entries), so no clock is read; one
// with a window is fresh before it.
func plainHit[V any](co *core, e *driver.Entry) (V, error, bool) {
	var zero V
	if e == nil || (e.StaleAt != e.ExpiresAt && !isFresh(e, time.Now().UnixNano())) {
		return zero, nil, false
	}
	l1 := co.l1
	if v, ok := e.Value.(V); ok {
		l1.hits.add(1)
		return v, nil, true
	}
	if e.Negative {
		l1.hits.add(1)
		co.negativeHits.add(1)
		return zero, ErrNotFound, true
	}
	if e.Value == nil && e.Payload == nil && isInterface[V]() { // a cached nil of an interface type
		l1.hits.add(1)
		return zero, nil, true
	}
	return zero, nil, false
}

// hasHitWork reports whether a hit with these options has work to do
// beyond returning the value: an early refresh to consider, a read to
// count for an adaptive TTL.
func hasHitWork(opts []EntryOption) bool {
	for i := range opts {
		if k := opts[i].kind; (k == optEarlyRefresh || k == optAdaptive || k == optSliding) && opts[i].d > 0 {
			return true
		}
	}
	return false
}

// get is the path of everything but a plain fresh L1 hit without an
// observer.
func get[V any](ctx context.Context, c *Cache, key string, loader func(context.Context) (V, error), opts []EntryOption, bg *bound[V]) (V, error) {
	if c.observer == nil {
		return getCore(ctx, c, key, loader, opts, bg, nil)
	}
	op := Operation{Kind: OpGet, Key: key}
	ctx = c.observer.Begin(ctx, op)
	if v, err, ok := freshL1[V](ctx, c, key, opts); ok {
		c.observer.Finish(ctx, op, Outcome{Result: ResultHit, Layer: c.l1.name}.with(err))
		return v, err
	}
	var out Outcome
	v, err := getCore(ctx, c, key, loader, opts, bg, &out)
	c.observer.Finish(ctx, op, out.with(err))
	return v, err
}

// set records how a read ended, for the observer; out may be nil.
func (o *Outcome) set(r Result, layer string) {
	if o != nil {
		o.Result, o.Layer = r, layer
	}
}

// with completes an outcome with the operation's error.
func (o Outcome) with(err error) Outcome {
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		o.Result = ResultNotFound
	default:
		o.Err = err
		if o.Result == ResultNone || o.Result == ResultLoaded {
			o.Result = ResultMiss
		}
	}
	return o
}

func getCore[V any](ctx context.Context, c *Cache, key string, loader func(context.Context) (V, error), opts []EntryOption, bg *bound[V], out *Outcome) (V, error) {
	var zero V
	if c.closed.Load() {
		return zero, ErrClosed
	}
	if loader == nil {
		return zero, errors.New("layercache: Get with a nil loader")
	}
	eo := c.defaults.with(opts)
	if err := eo.validate(); err != nil {
		return zero, err
	}
	eo.tags = c.scopedAll(ctx, eo.tags)
	if eo.adaptiveMax > 0 {
		c.reads().add(key)
	}
	for {
		now := time.Now().UnixNano()
		// A fresh or servable-stale entry in L1 is answered here; the
		// lower layers are read by the leader, once for all waiters.
		if c.l1 != nil {
			e, _ := c.l1.Get(ctx, key)
			if e != nil && !e.Expired(now) {
				v, err := inProcessValue[V](c, key, e)
				if err != nil {
					return zero, err
				}
				switch {
				case isFresh(e, now) && !refreshEarly(e, now, eo.earlyRefresh):
					c.l1.hits.add(1)
					out.set(ResultHit, c.l1.name)
					if eo.slidingIdle > 0 {
						c.slide(ctx, key, e, now, &eo)
					}
					return resultOf(c, v, e)
				case isFresh(e, now), now < deadline(e.StaleAt, eo.swr):
					// Someone must refresh it; everyone else gets it now,
					// and with a bound loader everyone does.
					cl, leader := c.flights.tryLead(key, eo.tags)
					if leader && bg != nil {
						if !bg.refreshLater(ctx, c, cl, key, &eo, func(ctx context.Context, eo *entryOptions) {
							_, _ = lead(ctx, c, cl, key, bg.load, eo, true, nil, nil)
						}) {
							c.flights.abandon(cl) // no room: a later hit tries again
						}
						leader = false
					}
					if !leader {
						c.l1.hits.add(1)
						return servedNow(ctx, c, key, v, e, c.l1.name, now, out)
					}
					return lead(ctx, c, cl, key, loader, &eo, true, nil, out)
				}
			}
		}
		cl, leader := c.flights.join(key, eo.tags)
		if !leader {
			if loading(ctx, c, key) {
				c.flights.leave(cl)
				return zero, fmt.Errorf("%w: %q", ErrRecursiveLoad, key)
			}
			c.deduped.add(1)
			c.event(ctx, Event{Kind: EventDeduplicated, Key: key})
			early, err := cl.wait(ctx)
			if err != nil {
				return zero, err
			}
			if early {
				return earlyResult[V](ctx, c, cl, out)
			}
			if cl.abandoned {
				continue
			}
			out.set(ResultLoaded, "")
			return callResult[V](c, cl)
		}
		return lead(ctx, c, cl, key, loader, &eo, false, bg, out)
	}
}

func isFresh(e *driver.Entry, now int64) bool {
	return e.StaleAt == 0 || now < e.StaleAt
}

// refreshEarly decides, for a fresh entry, whether this hit refreshes it
// ahead of time: never before the window, then with a probability that
// grows exponentially as the entry nears staleness, as in the XFetch
// algorithm ("Optimal Probabilistic Cache Stampede Prevention", Vattani et
// al.), with the window standing in for the recomputation cost.
func refreshEarly(e *driver.Entry, now int64, window time.Duration) bool {
	if window <= 0 || e.StaleAt == 0 {
		return false
	}
	left := e.StaleAt - now
	if left >= int64(window) {
		return false
	}
	return rand.Float64() < math.Exp(-4*float64(left)/float64(window))
}

// resultOf turns a negative entry into ErrNotFound and applies the cache's
// clone policy.
func resultOf[V any](c *Cache, v V, e *driver.Entry) (V, error) {
	if e.Negative {
		c.negativeHits.add(1)
		var zero V
		return zero, ErrNotFound
	}
	return cloneIf(c, v)
}

func cloneIf[V any](c *Cache, v V) (V, error) {
	if c.clone {
		return cloneValue(c.codec, v)
	}
	return v, nil
}

// inProcessValue returns the value an in-process entry holds as a V. A nil
// Value is a cached nil of an interface type (or an absence).
func inProcessValue[V any](c *Cache, key string, e *driver.Entry) (V, error) {
	if e.Value == nil && e.Payload != nil && !e.Negative {
		// Imported from a snapshot: held encoded until a write replaces it.
		return decodeValue[V](c.codec, e.Payload, e.Codec)
	}
	if e.Negative || (e.Value == nil && isInterface[V]()) {
		var zero V
		return zero, nil
	}
	v, ok := e.Value.(V)
	if !ok {
		var zero V
		return zero, fmt.Errorf("%w: key %q holds %T, not %T", ErrTypeMismatch, key, e.Value, zero)
	}
	return v, nil
}

// isInterface reports whether V is an interface type, whose zero value a
// cached nil stands for.
func isInterface[V any]() bool { return reflect.TypeFor[V]().Kind() == reflect.Interface }

// callResult is what a waiter returns from a finished call.
func callResult[V any](c *Cache, cl *call) (V, error) {
	var zero V
	if cl.err != nil {
		return zero, cl.err
	}
	v, ok := cl.val.(V)
	if !ok && cl.val != nil {
		return zero, fmt.Errorf("%w: key %q holds %T, not %T", ErrTypeMismatch, cl.key, cl.val, zero)
	}
	return cloneIf(c, v)
}

// earlyResult is what a waiter returns when the leader serves it a value
// while it refreshes.
func earlyResult[V any](ctx context.Context, c *Cache, cl *call, out *Outcome) (V, error) {
	s := cl.served // set before early was closed
	out.set(ResultHit, s.layer)
	if s.stale {
		c.staleServed.add(1)
		out.set(ResultStale, s.layer)
		c.event(ctx, Event{Kind: EventStaleServed, Layer: s.layer, Key: cl.key})
	}
	var zero V
	if s.err != nil {
		return zero, s.err
	}
	v, ok := s.val.(V)
	if !ok && s.val != nil {
		return zero, fmt.Errorf("%w: key %q holds %T, not %T", ErrTypeMismatch, cl.key, s.val, zero)
	}
	return cloneIf(c, v)
}

// found is an entry read from some layer, with its value decoded.
type found[V any] struct {
	entry *driver.Entry
	value V
	layer int // index of the layer that answered; -1 when nothing did
	// queued says a write of the entry to a layer outside the process is
	// waiting in the background, under the guard the read was given.
	queued bool
}

// read looks key up in the layers in order and backfills the layers above
// the one that answers. A stale entry answers only if no lower layer has a
// fresh one (another instance may have refreshed the key in a shared
// layer). An error of one layer (down, corrupt value) is counted and taken
// as a miss there; only a type mismatch is returned. cl guards the
// backfill against a concurrent invalidation; it may be nil only for a
// cache being read without backfill.
func read[V any](ctx context.Context, c *Cache, cl *call, key string, now int64) (found[V], error) {
	stale := found[V]{layer: -1}
	for i, l := range c.layers {
		if !l.inProcess && c.journal.skips(i, key) {
			// A removal of the key is still to reach this layer: what
			// it holds is older than that.
			l.misses.add(1)
			continue
		}
		e, err := l.get(ctx, key)
		if err == nil && e != nil && !l.inProcess && c.journal.skipsTags(i, e.Tags) {
			e = nil
		}
		if err != nil {
			if l.inProcess { // remote errors were counted by layer.exit
				l.errors.Add(1)
			}
			continue
		}
		if e == nil || e.Expired(now) {
			l.misses.add(1)
			continue
		}
		var v V
		if l.inProcess {
			if v, err = inProcessValue[V](c, key, e); err != nil {
				return found[V]{layer: -1}, err
			}
		} else if !e.Negative {
			if v, err = decodeValue[V](c.codec, e.Payload, e.Codec); err != nil {
				// Corrupt or foreign bytes: a miss here, and counted.
				l.errors.Add(1)
				c.logger.Debug("layercache: undecodable value", "layer", l.name, "key", key, "err", err)
				c.event(ctx, Event{Kind: EventLayerOp, Layer: l.name, Op: "decode", Key: key, Err: err})
				l.misses.add(1)
				continue
			}
		}
		l.hits.add(1)
		if !isFresh(e, now) {
			if stale.layer < 0 {
				stale = found[V]{entry: e, value: v, layer: i}
			}
			continue
		}
		f := found[V]{entry: e, value: v, layer: i}
		if i > 0 {
			f.queued = backfill(ctx, c, cl, key, i, e, v)
		}
		return f, nil
	}
	return stale, nil
}

// backfill copies an entry found in layer i into the layers above it.
// In-process layers get the decoded value at once; the others get the
// encoded entry in the background, and backfill reports whether it queued
// such a write (cl must then stay guarded until it is done).
func backfill[V any](ctx context.Context, c *Cache, cl *call, key string, i int, e *driver.Entry, v V) bool {
	var remote []*layer
	for _, up := range c.layers[:i] {
		if !up.inProcess {
			remote = append(remote, up)
			continue
		}
		mem := e
		if !c.layers[i].inProcess {
			mem = &driver.Entry{StaleAt: e.StaleAt, ExpiresAt: e.ExpiresAt, Tags: e.Tags, Negative: e.Negative}
			if !e.Negative {
				mem.Value = v
			}
		}
		_ = c.writeGuarded(ctx, cl, key, []*layer{up}, mem)
		c.backfills.Add(1)
		c.event(ctx, Event{Kind: EventBackfill, Layer: up.name, Key: key})
	}
	// A private layer (local disk) may hold values older than
	// invalidations this instance missed while it was down: it refills the
	// in-process layers above it, never the shared ones.
	if len(remote) == 0 || cl == nil || !c.layers[i].shared {
		return false
	}
	wire := e
	if c.layers[i].inProcess { // an in-process hit below a remote layer
		var err error
		if wire, err = c.encodeEntry(v, e); err != nil {
			return false
		}
	}
	cl.wire = wire // read by an undo only after the write ended
	return c.enqueue(ctx, writeJob{call: cl, key: key, layers: remote, entry: wire})
}

// lead runs the load of key as the leader of cl. staleOK says the caller
// already found a servable entry in L1; the layers are read again anyway,
// since another instance may have refreshed the key meanwhile. A leader
// whose context ended abandons the call, so that a waiter loads instead.
//
// With bg (a bound loader), a caller that finds a value it may serve while
// it is refreshed gets it at once and the refresh goes on in the
// background.
func lead[V any](ctx context.Context, c *Cache, cl *call, key string, loader func(context.Context) (V, error), eo *entryOptions, staleOK bool, bg *bound[V], out *Outcome) (V, error) {
	var zero V
	// Whatever ends this function, the call must be settled, or every
	// later Get of the key would wait for it: a loader may leave through
	// runtime.Goexit (t.FailNow in a test), which no recover sees.
	handedOff := false
	defer func() {
		if !handedOff {
			c.flights.abandon(cl)
		}
	}()
	now := time.Now().UnixNano()
	r, err := read[V](ctx, c, cl, key, now)
	if err != nil {
		c.flights.finish(cl, nil, err, false)
		return zero, err
	}
	if r.layer >= 0 && isFresh(r.entry, now) && !(staleOK && r.layer == 0) {
		out.set(ResultHit, c.layers[r.layer].name)
		c.flights.finish(cl, boxed(r.value, r.entry), negErr(r.entry), r.queued)
		v, err := resultOf(c, r.value, r.entry)
		return v, err
	}
	var stale *found[V]
	if r.layer >= 0 && now < r.entry.ExpiresAt {
		stale = &r
		// An entry fresh enough to serve while it is refreshed goes to the
		// waiters now; the leader alone waits for the refresh, unless it
		// can run in the background.
		if isFresh(r.entry, now) || now < deadline(r.entry.StaleAt, eo.swr) {
			layer := c.layers[r.layer].name
			c.flights.serveEarly(cl, served{val: boxed(r.value, r.entry), err: negErr(r.entry), layer: layer, stale: !isFresh(r.entry, now)})
			if bg != nil && bg.refreshLater(ctx, c, cl, key, eo, func(ctx context.Context, eo *entryOptions) {
				_, _ = refresh(ctx, c, cl, key, bg.load, eo, &r, now, nil)
			}) {
				handedOff = true
				return servedNow(ctx, c, key, r.value, r.entry, layer, now, out)
			}
		}
	}
	return refresh(ctx, c, cl, key, loader, eo, stale, now, out)
}

// servedNow is what a caller returns when it is served a value whose
// refresh runs meanwhile.
func servedNow[V any](ctx context.Context, c *Cache, key string, v V, e *driver.Entry, layer string, now int64, out *Outcome) (V, error) {
	out.set(ResultHit, layer)
	if !isFresh(e, now) {
		c.staleServed.add(1)
		out.set(ResultStale, layer)
		c.event(ctx, Event{Kind: EventStaleServed, Layer: layer, Key: key})
	}
	return resultOf(c, v, e)
}

// refresh is the part of a load after the read: take the coordinator's
// turn, run the loader, store its result and settle cl. stale is the entry
// the read found, if any.
func refresh[V any](ctx context.Context, c *Cache, cl *call, key string, loader func(context.Context) (V, error), eo *entryOptions, stale *found[V], now int64, out *Outcome) (V, error) {
	var zero V
	defer c.flights.abandon(cl) // see lead
	// The entry that prompted this load, if any: a read finding only that
	// one again has not found another instance's load.
	var known *driver.Entry
	if stale != nil {
		known = stale.entry
	}

	if c.coordinator != nil {
		theirs, lock, err := awaitTurn[V](ctx, c, cl, key, known)
		if err != nil { // the caller's context ended, or a type mismatch
			c.flights.abandon(cl)
			return zero, err
		}
		if theirs.layer >= 0 { // another instance loaded it meanwhile
			out.set(ResultHit, c.layers[theirs.layer].name)
			c.flights.finish(cl, boxed(theirs.value, theirs.entry), negErr(theirs.entry), theirs.queued)
			v, err := resultOf(c, theirs.value, theirs.entry)
			return v, err
		}
		if lock != nil {
			// Released after store, which writes the shared layers
			// synchronously when a coordinator is set.
			defer func() {
				if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
					c.logger.Warn("layercache: cannot release load lock", "key", key, "err", err)
				}
			}()
		}
	}

	if known != nil {
		c.refreshes.Add(1) // an entry was there: this load refreshes it
	}
	v, err, frame := runLoader(ctx, c, key, loader)
	out.set(ResultLoaded, "")
	leo, noStore := frame.settle(*eo)
	if err := leo.validate(); err != nil {
		c.logger.Warn("layercache: a loader set invalid entry options; the call's own are used", "key", key, "err", err)
		leo = *eo
	}
	eo = &leo
	switch {
	case err == nil && noStore:
		c.flights.finish(cl, any(v), nil, false)
		return cloneIf(c, v)

	case err == nil:
		held := any(v)
		if c.clone {
			// The cache keeps its own copy: the loader may hold on to v,
			// and the leader's caller gets v itself.
			cp, err := cloneValue(c.codec, v)
			if err != nil {
				c.flights.finish(cl, nil, err, false)
				return zero, err
			}
			held = cp
		}
		keep := c.store(ctx, cl, key, held, false, eo)
		c.flights.finish(cl, held, nil, keep)
		return v, nil

	case errors.Is(err, ErrNotFound):
		c.notFound.add(1)
		if eo.negativeTTL == 0 && known != nil {
			// The absence is not cached, but what was there is gone.
			c.forget(ctx, key)
		}
		keep := c.store(ctx, cl, key, zero, true, eo)
		c.flights.finish(cl, nil, ErrNotFound, keep)
		return zero, ErrNotFound

	case ctx.Err() != nil:
		// The leader's caller left, and the loader failed, whatever error
		// it chose to say so with: hand the load to a waiter rather than
		// give them this caller's cancellation.
		c.flights.abandon(cl)
		return zero, err
	}

	c.loadErrors.add(1)
	if stale != nil && now < deadline(stale.entry.StaleAt, eo.staleWindow()) {
		// An early refresh that failed keeps serving a value that is
		// still fresh; only a stale one counts as stale served.
		if !isFresh(stale.entry, now) {
			c.staleServed.add(1)
			out.set(ResultStale, c.layers[stale.layer].name)
			c.event(ctx, Event{Kind: EventStaleServed, Layer: c.layers[stale.layer].name, Key: key, Err: err})
		} else {
			out.set(ResultHit, c.layers[stale.layer].name)
		}
		c.flights.finish(cl, boxed(stale.value, stale.entry), negErr(stale.entry), false)
		v, err := resultOf(c, stale.value, stale.entry)
		return v, err
	}
	c.flights.finish(cl, nil, err, false)
	return zero, err
}

func boxed[V any](v V, e *driver.Entry) any {
	if e.Negative {
		return nil
	}
	return v
}

func negErr(e *driver.Entry) error {
	if e.Negative {
		return ErrNotFound
	}
	return nil
}

// runLoader calls loader, turning a panic into a *PanicError. With an
// observer the load is an operation of its own, so the loader's context can
// carry its span.
func runLoader[V any](ctx context.Context, c *Cache, key string, loader func(context.Context) (V, error)) (v V, err error, frame *loadFrame) {
	c.loads.add(1)
	frame = &loadFrame{cache: c, key: key, parent: loadFrameOf(ctx)}
	ctx = context.WithValue(ctx, loadFrameKey{}, frame)
	if c.observer != nil {
		op := Operation{Kind: OpLoad, Key: key}
		ctx = c.observer.Begin(ctx, op)
		defer func() { c.observer.Finish(ctx, op, Outcome{Result: ResultLoaded}.with(err)) }()
	}
	if err := c.origin.acquire(ctx); err != nil {
		return v, err, frame
	}
	defer c.origin.release()
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	v, err = loader(ctx)
	return v, err, frame
}

// loadFrame is one load in a chain of loaders calling Get: the context a
// loader runs under carries the keys being loaded for it, so that a loader
// asking for a key it is itself loading gets an error instead of waiting
// for itself forever.
type loadFrame struct {
	cache  *Cache
	key    string
	parent *loadFrame

	// What the loader decided about its entry (SetEntryOptions,
	// DoNotStore); a loader may call those from goroutines of its own.
	mu      sync.Mutex
	opts    []EntryOption
	noStore bool
}

// settle returns the call's options with the loader's applied, and
// whether the loader asked not to store its value.
func (f *loadFrame) settle(eo entryOptions) (entryOptions, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return eo.with(f.opts), f.noStore
}

type loadFrameKey struct{}

func loadFrameOf(ctx context.Context) *loadFrame {
	f, _ := ctx.Value(loadFrameKey{}).(*loadFrame)
	return f
}

// loading reports whether ctx is the context of a loader (or of a loader
// it called) that is loading key in c.
func loading(ctx context.Context, c *Cache, key string) bool {
	for f := loadFrameOf(ctx); f != nil; f = f.parent {
		if f.cache == c && f.key == key {
			return true
		}
	}
	return false
}

// awaitTurn makes this instance the one that loads key, through the
// coordinator. While another instance holds the load lock it waits and reads
// the shared layers again; it returns what it finds there, or the lock once
// it holds it. Only a fresh entry newer than known (the entry that prompted
// the load, nil on a miss) is another instance's load. If the coordinator
// fails, the cache loads without it (nil lock): a duplicate load is better
// than no answer.
func awaitTurn[V any](ctx context.Context, c *Cache, cl *call, key string, known *driver.Entry) (found[V], driver.Lock, error) {
	theirs := func(r found[V], now int64) bool {
		return r.layer >= 0 && isFresh(r.entry, now) && (known == nil || r.entry.StaleAt > known.StaleAt)
	}
	none := found[V]{layer: -1}
	for {
		lock, err := c.coordinator.Acquire(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return none, nil, ctx.Err()
			}
			c.logger.Debug("layercache: coordinator unavailable; loading without it", "key", key, "err", err)
			return none, nil, nil
		}
		if lock != nil {
			// Another instance may have loaded, stored and released
			// between our miss and our lock: look once more.
			now := time.Now().UnixNano()
			if r, err := read[V](ctx, c, cl, key, now); err == nil && theirs(r, now) {
				if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
					c.logger.Debug("layercache: cannot release load lock", "key", key, "err", err)
				}
				return r, nil, nil
			}
			return none, lock, nil
		}
		if err := c.coordinator.Wait(ctx, key); err != nil {
			if ctx.Err() != nil {
				return none, nil, ctx.Err()
			}
			c.logger.Debug("layercache: coordinator wait failed; loading without it", "key", key, "err", err)
			return none, nil, nil
		}
		now := time.Now().UnixNano()
		r, err := read[V](ctx, c, cl, key, now)
		if err != nil {
			return none, nil, err
		}
		if theirs(r, now) {
			return r, nil, nil
		}
	}
}
