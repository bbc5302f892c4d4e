package driver

import "errors"

// ErrRefused is wrapped by the errors of layers that refuse a value for
// what it is (too large, not storable), as opposed to failing. The cache
// returns such an error to the caller but does not count it against the
// layer's health: a refusal never opens the layer's circuit breaker.
var ErrRefused = errors.New("value refused by the layer")
