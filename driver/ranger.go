package driver

import "context"

// Ranger is implemented by layers that can list the entries they hold, for
// snapshots of a cache. Without it a layer cannot be exported.
type Ranger interface {
	Layer
	// Range calls fn with each live entry until fn returns false. Entries
	// written or removed while it runs may or may not be seen. fn must not
	// modify the entry.
	Range(ctx context.Context, fn func(key string, e *Entry) bool) error
}
