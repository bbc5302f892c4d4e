package layercache

import (
	"context"
	"time"
)

// refresher runs the refreshes of a bound loader in the background, so that
// no caller waits for one: at most cap(slots) at once (a refresh that finds
// no room is left to a later hit), each under its own timeout and detached
// from the caller that prompted it, whose request may end first.
type refresher struct {
	slots   chan struct{}
	timeout time.Duration
}

func newRefresher(concurrency int, timeout time.Duration) *refresher {
	return &refresher{slots: make(chan struct{}, concurrency), timeout: timeout}
}

// start runs refresh in the background and reports whether it could. A nil
// refresher never can.
func (r *refresher) start(c *Cache, ctx context.Context, refresh func(context.Context)) bool {
	if r == nil {
		return false
	}
	c.bgMu.RLock()
	defer c.bgMu.RUnlock()
	if c.bgClosed {
		return false
	}
	select {
	case r.slots <- struct{}{}:
	default:
		return false
	}
	c.background.Add(1)
	go func() {
		defer c.background.Done()
		defer func() { <-r.slots }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
		defer cancel()
		refresh(ctx)
	}()
	return true
}

// bound is what a bound loader hands the read path: its background
// refresher, and its loader for the key being read. Background refreshes
// use this loader, never the one a caller of Get passed: a closure that
// could outlive its call would escape to the heap on every Get, hits
// included.
type bound[V any] struct {
	r    *refresher
	load func(context.Context) (V, error)
}

// refreshLater runs refresh in the background with its own copy of eo (the
// caller's options must not outlive the call either), reporting whether it
// could.
func (b *bound[V]) refreshLater(ctx context.Context, c *Cache, cl *call, key string, eo *entryOptions, refresh func(context.Context, *entryOptions)) bool {
	own := eo.detached()
	return b.r.start(c, ctx, func(ctx context.Context) { refresh(ctx, own) })
}
