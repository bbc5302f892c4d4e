package driver

import "context"

// PrefixInvalidator is implemented by layers that can remove every entry
// whose key starts with a prefix, without being told the keys. The cache
// uses it for [Cache.InvalidatePrefix] and to clear a namespace. Without it
// the cache cannot invalidate a prefix in that layer and says so in the
// error it returns.
//
// Implementations bound the work of each step (a scan page, a batch of
// deletes) so that a prefix covering millions of keys never holds the
// backend for long; the call as a whole takes time in proportion to the
// layer's size and honours its context between steps.
type PrefixInvalidator interface {
	Layer
	// InvalidatePrefix removes every entry whose key starts with prefix.
	// The key is the one the cache passes to [Layer.Set], without any
	// prefix the layer adds of its own. The empty prefix matches every
	// entry; a layer may refuse it where it would refuse [Clearer.Clear].
	// Entries written while the call runs may survive it. On an error,
	// some matching entries may already be gone and others not.
	InvalidatePrefix(ctx context.Context, prefix string) error
}
