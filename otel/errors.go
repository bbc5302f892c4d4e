package layercacheotel

import (
	"context"
	"errors"
	"reflect"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver/envelope"
)

// errorType classifies err for the error.type attribute. The conventions
// ask for a value of low cardinality: a name for the failures the cache
// knows (timeout, layer_unavailable, corrupt, panic, ...), else the Go type
// of the underlying error ("*net.OpError"), else "_OTHER" for errors that
// are only a message (errors.New, fmt.Errorf), whose type says nothing.
func errorType(err error) string {
	var pe *layercache.PanicError
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, layercache.ErrLayerUnavailable):
		return "layer_unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, envelope.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, layercache.ErrTypeMismatch):
		return "type_mismatch"
	case errors.Is(err, layercache.ErrClosed):
		return "closed"
	case errors.As(err, &pe):
		return "panic"
	}
	err = cause(err)
	switch t := reflect.TypeOf(err).String(); t {
	case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
		return "_OTHER"
	default:
		return t
	}
}

// cause unwraps what only wraps a failure without saying what it is: the
// cache's LayerError, fmt.Errorf's %w wrapper, and the first of joined
// errors.
func cause(err error) error {
	for {
		switch x := err.(type) {
		case *layercache.LayerError:
			if x.Err != nil {
				err = x.Err
				continue
			}
		case interface{ Unwrap() []error }:
			if errs := x.Unwrap(); len(errs) > 0 && errs[0] != nil {
				err = errs[0]
				continue
			}
		}
		if reflect.TypeOf(err).String() == "*fmt.wrapError" {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
				continue
			}
		}
		return err
	}
}
