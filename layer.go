package layercache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// layer wraps one driver.Layer with what the cache keeps per layer: its
// name, its capabilities (looked up once), its breaker and its counters.
type layer struct {
	driver.Layer
	name      string
	index     int // position in the stack
	inProcess bool
	shared    bool          // every instance uses it in common (driver.Shared)
	timeout   time.Duration // zero for in-process layers and driver.Timeouters
	budget    time.Duration // the time an operation may take, whoever enforces it
	breaker   *breaker      // nil for in-process layers
	observer  Observer      // nil when the cache has none
	recovered func()        // called when the breaker closes again

	hits, misses counter
	errors       atomic.Uint64
	skipped      atomic.Uint64
	ops          atomic.Uint64 // timed operations, for the mean latency
	opNanos      atomic.Uint64
	latency      latencyHistogram
}

func newLayer(l driver.Layer, i int, d Degradation, o Observer) *layer {
	w := &layer{Layer: l, index: i, hits: newCounter(), misses: newCounter(), observer: o}
	if n, ok := l.(driver.Namer); ok {
		w.name = n.Name()
	} else {
		w.name = fmt.Sprintf("layer%d", i+1)
	}
	_, w.shared = l.(driver.Shared)
	if _, ok := l.(driver.InProcess); ok {
		w.inProcess = true
		return w
	}
	w.budget = d.Timeout
	if t, ok := l.(driver.Timeouter); ok {
		w.budget = t.Timeout()
	} else {
		w.timeout = d.Timeout
	}
	w.breaker = newBreaker(d)
	return w
}

// errUnsupported is the cause for an operation the layer does not offer:
// it is not a failure to journal and retry.
var errUnsupported = errors.New("the layer does not support this operation")

// enter and exit bracket every operation on a layer that is not in-process:
// together they are the single place where the degradation policy lives.
// enter returns ErrLayerUnavailable when the breaker is open, and otherwise
// the context to run the operation under, with the layer's timeout.
func (l *layer) enter(ctx context.Context, op string) (context.Context, context.CancelFunc, ticket, error) {
	ok, probe := l.breaker.allow()
	if !ok {
		l.skipped.Add(1)
		return nil, nil, ticket{}, &LayerError{Op: op, Layer: l.name, Err: ErrLayerUnavailable}
	}
	t := ticket{start: time.Now(), probe: probe}
	if l.timeout == 0 { // the layer bounds its own operations
		return ctx, noCancel, t, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, l.timeout)
	return opCtx, cancel, t, nil
}

// ticket is what enter hands exit about one operation.
type ticket struct {
	start time.Time
	probe bool // the breaker's half-open probe
}

func noCancel() {}

// exit records the outcome of an operation that enter let through. ctx is
// the caller's context, not the one enter made.
func (l *layer) exit(ctx context.Context, op string, t ticket, err error) error {
	took := time.Since(t.start)
	l.ops.Add(1)
	l.opNanos.Add(uint64(took))
	l.latency.record(took)
	o := sick
	switch {
	case err == nil, errors.Is(err, envelope.ErrCorrupt), errors.Is(err, driver.ErrRefused):
		// A bad value, or a refusal of the caller's value, is not a sick
		// layer: the layer answered.
		o = healthy
	case errors.Is(ctx.Err(), context.Canceled):
		o = undecided // the caller gave up; that says nothing of the layer
	case ctx.Err() != nil && took < l.budget/20:
		// The caller's own deadline came first, too soon to blame the
		// layer. One that waited a twentieth of the layer's budget (5ms
		// of the default 100ms, far beyond a healthy round trip) did meet
		// a slow layer: if every caller's deadline is shorter than the
		// timeout, this is how a hung layer still opens the breaker.
		o = undecided
	}
	changed, to := l.breaker.done(t.probe, o)
	if changed && to == BreakerClosed && l.recovered != nil {
		l.recovered()
	}
	if l.observer != nil {
		l.observer.Event(ctx, Event{Kind: EventLayerOp, Layer: l.name, Op: op, Duration: took, Err: err})
		if changed {
			kind := EventBreakerClose
			if to == BreakerOpen {
				kind = EventBreakerOpen
			}
			l.observer.Event(ctx, Event{Kind: kind, Layer: l.name})
		}
	}
	if err == nil {
		return nil
	}
	if o == sick || errors.Is(err, envelope.ErrCorrupt) {
		l.errors.Add(1)
	}
	return &LayerError{Op: op, Layer: l.name, Err: err}
}

// inProcessErr wraps and counts an in-process layer's error.
func (l *layer) inProcessErr(op string, err error) error {
	if err == nil {
		return nil
	}
	l.errors.Add(1)
	return &LayerError{Op: op, Layer: l.name, Err: err}
}

func (l *layer) get(ctx context.Context, key string) (*driver.Entry, error) {
	if l.inProcess {
		return l.Get(ctx, key)
	}
	opCtx, cancel, t, err := l.enter(ctx, "get")
	if err != nil {
		return nil, err
	}
	e, err := l.Get(opCtx, key)
	cancel()
	return e, l.exit(ctx, "get", t, err)
}

func (l *layer) set(ctx context.Context, key string, e *driver.Entry) error {
	if l.inProcess {
		return l.inProcessErr("set", l.Set(ctx, key, e))
	}
	opCtx, cancel, t, err := l.enter(ctx, "set")
	if err != nil {
		return err
	}
	err = l.Set(opCtx, key, e)
	cancel()
	return l.exit(ctx, "set", t, err)
}

func (l *layer) del(ctx context.Context, keys []string) error {
	if l.inProcess {
		return l.inProcessErr("delete", l.Delete(ctx, keys...))
	}
	opCtx, cancel, t, err := l.enter(ctx, "delete")
	if err != nil {
		return err
	}
	err = l.Delete(opCtx, keys...)
	cancel()
	return l.exit(ctx, "delete", t, err)
}

// do runs a rarer operation under the same policy as get, set and del.
func (l *layer) do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	if l.inProcess {
		return l.inProcessErr(op, f(ctx))
	}
	opCtx, cancel, t, err := l.enter(ctx, op)
	if err != nil {
		return err
	}
	err = f(opCtx)
	cancel()
	return l.exit(ctx, op, t, err)
}

// deleteIfHolds takes back a value this instance wrote: only while the layer
// still holds it, when the layer can tell.
func (l *layer) deleteIfHolds(ctx context.Context, key string, e *driver.Entry) error {
	cd, ok := l.Layer.(driver.ConditionalDeleter)
	if !ok || e == nil {
		return l.del(ctx, []string{key})
	}
	return l.do(ctx, "delete", func(ctx context.Context) error { return cd.DeleteIfHolds(ctx, key, e) })
}

func (l *layer) invalidateTags(ctx context.Context, tags []string) error {
	ti, ok := l.Layer.(driver.TagInvalidator)
	if !ok {
		return &LayerError{Op: "invalidate", Layer: l.name, Err: errUnsupported}
	}
	return l.do(ctx, "invalidate", func(ctx context.Context) error { return ti.InvalidateTags(ctx, tags...) })
}

func (l *layer) clear(ctx context.Context) error {
	cl, ok := l.Layer.(driver.Clearer)
	if !ok {
		return &LayerError{Op: "clear", Layer: l.name, Err: errUnsupported}
	}
	return l.do(ctx, "clear", cl.Clear)
}
