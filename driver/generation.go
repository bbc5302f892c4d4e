package driver

import "context"

// Generations is implemented by shared layers that can keep a counter per
// name that every instance sees (Redis: one key, INCR). The cache uses it
// for namespace generations: the generation is part of every key of a
// namespace, so moving it to the next value makes the whole namespace
// unreachable on every instance at once, without scanning a key.
type Generations interface {
	// Generation returns the current value of name's counter, 0 when it
	// was never moved.
	Generation(ctx context.Context, name string) (uint64, error)
	// NextGeneration moves name's counter on by one and returns the new
	// value.
	NextGeneration(ctx context.Context, name string) (uint64, error)
}
