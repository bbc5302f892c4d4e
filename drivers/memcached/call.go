package memcached

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// call runs op, one or more gomemcache calls, under ctx. gomemcache takes no
// context, but its socket deadlines bound op by the layer's timeout; so op
// runs on the caller's goroutine, at no extra cost, unless ctx has a
// deadline that comes sooner. Then op runs on a goroutine of its own, and
// call returns ctx's error as soon as ctx ends; op finishes in the
// background within the timeout, its result dropped. A ctx that is already
// done fails at once.
func call[T any](ctx context.Context, l *Layer, op func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) >= l.timeout {
		return op()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned op does not block
	go func() {
		v, err := op()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// opError wraps a failed operation. When the context has ended, its error
// is wrapped too, so that the cache can tell a caller's deadline from a
// failing server with errors.Is(err, context.DeadlineExceeded).
func opError(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("layercache/memcached: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("layercache/memcached: %s: %w", op, err)
}
