package layercache

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound reports a cached absence. A loader returns it (or an
	// error wrapping it) to have the absence cached for the negative TTL;
	// Get then returns it until that TTL ends. Match it with errors.Is.
	ErrNotFound = errors.New("layercache: not found")

	// ErrClosed is returned by every operation on a closed [Cache].
	ErrClosed = errors.New("layercache: cache closed")

	// ErrLayerUnavailable is the cause in a [LayerError] for an operation
	// that was skipped because the layer's circuit breaker is open.
	ErrLayerUnavailable = errors.New("layercache: layer unavailable (circuit open)")

	// ErrTypeMismatch is returned when a key holds a value of another type
	// than the one asked for, in an in-process layer.
	ErrTypeMismatch = errors.New("layercache: cached value has another type")

	// ErrRecursiveLoad is returned by a Get that a loader makes (directly,
	// or through other loaders) for a key it is itself loading: waiting
	// for that load would wait forever.
	ErrRecursiveLoad = errors.New("layercache: loader asks for the key it is loading")
)

// LayerError is a failure of one layer: the operation, the layer's name and
// the cause. A read that fails in a layer is treated as a miss there and
// counted; writes and invalidations return LayerErrors (joined with
// errors.Join when several layers fail).
type LayerError struct {
	Op    string // "get", "set", "delete", "invalidate", "clear", "decode", "ping"
	Layer string // the layer's name, such as "redis"
	Err   error
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("layercache: %s on layer %s: %v", e.Op, e.Layer, e.Err)
}

func (e *LayerError) Unwrap() error { return e.Err }

// PanicError is the error every caller of a load receives when the loader
// panicked. The process is not brought down: the panic is recovered on the
// goroutine that ran the loader.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the loader's stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("layercache: loader panicked: %v", e.Value)
}

// Unwrap returns the panic value when it is an error, so that
// panic(someErr) can be matched with errors.Is and errors.As.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
