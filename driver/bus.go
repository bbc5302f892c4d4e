package driver

import "context"

// Op is the kind of change an invalidation [Message] announces.
type Op uint8

// The operations an invalidation bus carries.
const (
	OpSet               Op = iota + 1 // keys were written; others drop their copies
	OpDelete                          // keys were deleted
	OpInvalidate                      // tags were invalidated
	OpClear                           // everything was cleared
	OpInvalidatePrefix                // entries under the key prefixes in Keys were removed
	OpExpire                          // keys were made stale
	OpExpireTags                      // entries carrying one of the tags were made stale
	OpExpirePrefix                    // entries under the key prefixes in Keys were made stale
	OpInvalidateAllTags               // entries carrying all of the tags were removed
)

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case OpSet:
		return "set"
	case OpDelete:
		return "delete"
	case OpInvalidate:
		return "invalidate"
	case OpClear:
		return "clear"
	case OpInvalidatePrefix:
		return "invalidate_prefix"
	case OpExpire:
		return "expire"
	case OpExpireTags:
		return "expire_tags"
	case OpExpirePrefix:
		return "expire_prefix"
	case OpInvalidateAllTags:
		return "invalidate_all_tags"
	}
	return "unknown"
}

// Message tells other instances that keys or tags changed. It is sent only
// after the shared layers were written, so a receiver that drops its
// in-process copy and reads again sees the new state.
type Message struct {
	// Origin is the sending instance's id; an instance ignores its own
	// messages.
	Origin string
	Op     Op
	Keys   []string // the keys, or for the prefix operations the prefixes
	Tags   []string
}

// Bus carries invalidation messages between the instances that share a
// namespace. Implementations must be safe for concurrent use.
type Bus interface {
	// Publish sends m to every other subscriber of the namespace.
	Publish(ctx context.Context, m Message) error

	// Subscribe starts delivering messages to handle until Close. reset is
	// called on every subscription, the first one and each one after a lost
	// connection, because messages may have been missed while away: the
	// cache then drops its in-process entries. Both callbacks are called from
	// one goroutine at a time and must not block for long.
	Subscribe(ctx context.Context, handle func(Message), reset func()) error

	// Close stops delivery and releases the bus's resources.
	Close() error
}

// DropCounter is implemented by a Bus that drops messages it receives
// before they reach the handler: malformed, unauthenticated or replayed
// ones. The cache counts them among its bus errors.
type DropCounter interface {
	// Dropped returns how many messages the bus has dropped so far.
	Dropped() uint64
}

// Coordinator lets instances agree which one of them runs the loader for a
// key, so that a miss across many instances loads once.
// Implementations must be safe for concurrent use.
type Coordinator interface {
	// Acquire tries to take the load lock for key without waiting. It
	// returns the held lock, or nil when another instance holds it.
	Acquire(ctx context.Context, key string) (Lock, error)

	// Wait blocks until the lock on key is released or its lease ends,
	// or ctx ends. The caller then reads the shared layers again and, if
	// the value is still missing, tries to Acquire.
	Wait(ctx context.Context, key string) error

	// Close releases the coordinator's resources.
	Close() error
}

// Lock is a held load lock. It is renewed while held and must be released
// with Release once the loaded value is in the shared layers.
type Lock interface {
	// Release gives the lock up, unless it was lost (its lease ended and
	// another instance took it), in which case it does nothing.
	Release(ctx context.Context) error
}
