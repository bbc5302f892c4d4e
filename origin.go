package layercache

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"
)

// OriginLimit bounds how hard the cache may press on the origin behind its
// loaders, whatever the traffic: at most Concurrent loads at once (0: no
// bound) and PerSecond loads a second with bursts of Burst (0: no bound).
// A load that must wait for room waits under its caller's context; one
// whose context ends first fails with the context's error, and is served a
// stale value instead under stale-if-error.
type OriginLimit struct {
	Concurrent int
	PerSecond  float64
	Burst      int // default: 1, or PerSecond rounded up
}

// WithOriginLimit bounds the loads of the whole cache (loaders of Get,
// bound loaders, batch loads and warming). See [OriginLimit].
func WithOriginLimit(l OriginLimit) Option { return func(c *settings) { c.origin = l } }

// origin enforces an OriginLimit; a nil *origin enforces nothing.
type origin struct {
	slots   chan struct{} // nil: no bound on concurrency
	limiter *rate.Limiter // nil: no bound on rate
}

func newOrigin(l OriginLimit) (*origin, error) {
	if l.Concurrent < 0 || l.PerSecond < 0 || l.Burst < 0 {
		return nil, errors.New("layercache: negative origin limit")
	}
	if l.Concurrent == 0 && l.PerSecond == 0 {
		return nil, nil
	}
	o := &origin{}
	if l.Concurrent > 0 {
		o.slots = make(chan struct{}, l.Concurrent)
	}
	if l.PerSecond > 0 {
		burst := l.Burst
		if burst == 0 {
			burst = max(1, int(l.PerSecond+0.999))
		}
		o.limiter = rate.NewLimiter(rate.Limit(l.PerSecond), burst)
	}
	return o, nil
}

// acquire waits for room for one load; release must follow a nil error.
func (o *origin) acquire(ctx context.Context) error {
	if o == nil {
		return nil
	}
	if o.limiter != nil {
		if err := o.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err // the wait would outlast the caller's deadline
		}
	}
	if o.slots != nil {
		select {
		case o.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (o *origin) release() {
	if o != nil && o.slots != nil {
		<-o.slots
	}
}

// ErrOriginUnavailable is returned by a bound loader whose origin breaker
// ([WithOriginBreaker]) is open: the origin failed again and again, and
// callers fail fast (or are served stale values under stale-if-error)
// instead of piling onto it.
var ErrOriginUnavailable = errors.New("layercache: origin unavailable (loader circuit open)")

// WithOriginBreaker gives a bound loader ([NewLoader]) a circuit breaker on
// its load function: after failures failed loads in a row (ErrNotFound and
// callers leaving do not count) the loader fails fast with
// [ErrOriginUnavailable] for retryAfter, then lets one load through to
// probe. Other calls ignore it.
func WithOriginBreaker(failures int, retryAfter time.Duration) EntryOption {
	return EntryOption{kind: optOriginBreaker, f: float64(failures), d: retryAfter}
}

// guardedLoad wraps a bound loader's function with its origin breaker.
func guardedLoad[V any](b *breaker, load func(context.Context, string) (V, error)) func(context.Context, string) (V, error) {
	return func(ctx context.Context, id string) (V, error) {
		ok, probe := b.allow()
		if !ok {
			var zero V
			return zero, ErrOriginUnavailable
		}
		v, err := load(ctx, id)
		o := sick
		switch {
		case err == nil, errors.Is(err, ErrNotFound):
			o = healthy
		case ctx.Err() != nil:
			o = undecided
		}
		b.done(probe, o)
		return v, err
	}
}
