package driver

import (
	"context"
	"time"
)

// Layer is one level of a cache stack: memory, Redis, disk or anything that
// can store an [Entry] under a string key.
//
// Implementations must be safe for concurrent use. Every method that may
// block honours its context. A miss is not an error: Get returns nil, nil.
// A value that cannot be decoded (corrupt or foreign bytes) is reported as an
// error, never returned as an Entry, so the cache can count it and fall
// through to the next layer.
type Layer interface {
	// Get returns the entry stored under key, or nil, nil when there is
	// none or it has expired. key is valid only until Get returns (the
	// cache may build it in a reused buffer): a layer that keeps it must
	// copy it, as with the slice given to io.Writer.Write.
	Get(ctx context.Context, key string) (*Entry, error)

	// Set stores e under key. The layer keeps the entry for at most
	// e.ExpiresAt; it may keep it for less.
	Set(ctx context.Context, key string, e *Entry) error

	// Delete removes the keys. Deleting an absent key is not an error.
	Delete(ctx context.Context, keys ...string) error

	// Close releases the layer's resources. The layer is not used after.
	Close() error
}

// InProcess is implemented by layers that live in the process's own memory.
// The cache stores decoded values ([Entry.Value]) in them, so a hit needs no
// decoding, and drops their entries when the invalidation bus reports a
// change made elsewhere. Layers that do not implement it receive encoded
// payloads ([Entry.Payload]).
type InProcess interface {
	Layer
	// InProcess is a marker; its result is ignored.
	InProcess()
}

// Shared is implemented by layers that every instance of a cache reads and
// writes in common, such as Redis. An invalidation heard from another
// instance drops the key from every layer that is not shared (memory,
// disk); the shared ones were already changed by the sender. A layer that
// does not implement Shared is taken to be private to this instance.
type Shared interface {
	Layer
	// Shared is a marker; its result is ignored.
	Shared()
}

// ConditionalDeleter is implemented by layers that can delete a key only
// while it still holds a given entry. The cache uses it to take back a value
// it wrote moments before it heard of a change to the key (a Set or Delete
// here, or another instance's), without deleting the newer value that change
// wrote. Without it the cache deletes the key outright, which is safe but
// costs a load.
type ConditionalDeleter interface {
	Layer
	// DeleteIfHolds deletes key if the layer holds exactly e there (as
	// written by Set with e) and does nothing otherwise.
	DeleteIfHolds(ctx context.Context, key string, e *Entry) error
}

// BatchGetter is implemented by layers that can read many keys in one round
// trip. Without it the cache calls [Layer.Get] once per key.
type BatchGetter interface {
	Layer
	// GetMany returns one entry per key, in the order of keys, with nil for
	// a miss. An error fails the whole batch.
	GetMany(ctx context.Context, keys []string) ([]*Entry, error)
}

// BatchSetter is implemented by layers that can write many keys in one round
// trip. Without it the cache calls [Layer.Set] once per key.
type BatchSetter interface {
	Layer
	// SetMany stores entries[i] under keys[i]. The slices have equal length.
	SetMany(ctx context.Context, keys []string, entries []*Entry) error
}

// Clearer is implemented by layers that can drop every entry they hold
// (within their namespace or prefix). Without it [Cache.Clear] reports that
// the layer cannot be cleared.
type Clearer interface {
	Layer
	Clear(ctx context.Context) error
}

// TagInvalidator is implemented by layers that can remove every entry
// carrying one of the given tags. Without it the cache cannot invalidate tags
// in that layer and says so in the error it returns.
type TagInvalidator interface {
	Layer
	InvalidateTags(ctx context.Context, tags ...string) error
}

// Pinger is implemented by layers that talk to a server. Without it the
// layer is taken to be always reachable.
type Pinger interface {
	Layer
	Ping(ctx context.Context) error
}

// Namer is implemented by layers that name themselves for errors, stats and
// traces ("memory", "redis", "disk"). Without it the cache uses the layer's
// position ("layer2").
type Namer interface {
	Layer
	Name() string
}

// Timeouter is implemented by layers that bound every operation by a
// timeout of their own, for example through their client's socket
// deadlines. The cache then adds no deadline of its own to their
// operations. Every other layer that is not [InProcess] runs each operation
// under a context deadline of the cache's degradation timeout; a per-call
// deadline costs a runtime timer, a few percent of a fast round trip, which
// is why a layer that can enforce its timeout more cheaply may take it over.
type Timeouter interface {
	Layer
	Timeout() time.Duration
}

// Aser is the escape hatch to the value a layer wraps, as in Go CDK: As
// reports whether it could set target, a pointer to the wrapped type (for
// example *redis.UniversalClient). Without it As always reports false.
type Aser interface {
	As(target any) bool
}
