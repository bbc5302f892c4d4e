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
// Every operation on a layer that is not in-process goes through do, which
// applies the timeout and the breaker: this is the single place where the
// degradation policy lives.
type layer struct {
	driver.Layer
	name      string
	inProcess bool
	timeout   time.Duration // zero for in-process layers
	breaker   *breaker      // nil for in-process layers
	observer  Observer      // nil when the cache has none

	hits, misses counter
	errors       atomic.Uint64
	skipped      atomic.Uint64
	ops          atomic.Uint64 // timed operations, for the mean latency
	opNanos      atomic.Uint64
}

func newLayer(l driver.Layer, i int, d Degradation, o Observer) *layer {
	w := &layer{Layer: l, hits: newCounter(), misses: newCounter(), observer: o}
	if n, ok := l.(driver.Namer); ok {
		w.name = n.Name()
	} else {
		w.name = fmt.Sprintf("layer%d", i+1)
	}
	if _, ok := l.(driver.InProcess); ok {
		w.inProcess = true
		return w
	}
	w.timeout = d.Timeout
	if t, ok := l.(driver.Timeouter); ok && t.Timeout() > 0 {
		w.timeout = t.Timeout()
	}
	w.breaker = newBreaker(d)
	return w
}

// do runs op on the layer under the degradation policy. It returns
// ErrLayerUnavailable without calling op when the breaker is open.
func (l *layer) do(ctx context.Context, name string, op func(ctx context.Context) error) error {
	if l.inProcess {
		if err := op(ctx); err != nil {
			l.errors.Add(1)
			return &LayerError{Op: name, Layer: l.name, Err: err}
		}
		return nil
	}
	if !l.breaker.allow() {
		l.skipped.Add(1)
		return &LayerError{Op: name, Layer: l.name, Err: ErrLayerUnavailable}
	}
	opCtx, cancel := context.WithTimeout(ctx, l.timeout)
	start := time.Now()
	err := op(opCtx)
	cancel()
	took := time.Since(start)
	l.ops.Add(1)
	l.opNanos.Add(uint64(took))
	// A bad value is not a sick layer (the layer answered), and a caller
	// that gave up says nothing about it either.
	healthy := err == nil || errors.Is(err, envelope.ErrCorrupt) || ctx.Err() != nil
	changed, to := l.breaker.done(healthy)
	if l.observer != nil {
		l.observer.Event(ctx, Event{Kind: EventLayerOp, Layer: l.name, Op: name, Duration: took, Err: err})
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
	l.errors.Add(1)
	return &LayerError{Op: name, Layer: l.name, Err: err}
}

func (l *layer) get(ctx context.Context, key string) (*driver.Entry, error) {
	if l.inProcess {
		return l.Get(ctx, key)
	}
	var e *driver.Entry
	err := l.do(ctx, "get", func(ctx context.Context) error {
		var err error
		e, err = l.Get(ctx, key)
		return err
	})
	return e, err
}

func (l *layer) set(ctx context.Context, key string, e *driver.Entry) error {
	return l.do(ctx, "set", func(ctx context.Context) error { return l.Set(ctx, key, e) })
}

func (l *layer) del(ctx context.Context, keys []string) error {
	return l.do(ctx, "delete", func(ctx context.Context) error { return l.Delete(ctx, keys...) })
}

func (l *layer) invalidateTags(ctx context.Context, tags []string) error {
	ti, ok := l.Layer.(driver.TagInvalidator)
	if !ok {
		return &LayerError{Op: "invalidate", Layer: l.name, Err: errors.New("layer does not support tags")}
	}
	return l.do(ctx, "invalidate", func(ctx context.Context) error { return ti.InvalidateTags(ctx, tags...) })
}

func (l *layer) clear(ctx context.Context) error {
	cl, ok := l.Layer.(driver.Clearer)
	if !ok {
		return &LayerError{Op: "clear", Layer: l.name, Err: errors.New("layer cannot be cleared")}
	}
	return l.do(ctx, "clear", cl.Clear)
}
