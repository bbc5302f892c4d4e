package layercache

import (
	"context"
	"time"
)

// Observer receives what a cache does, for tracing, metrics or logs. The
// root package knows no telemetry system: package
// github.com/layercache/layercache/otel implements an Observer on
// OpenTelemetry.
//
// Methods are called synchronously on the goroutine doing the work, so they
// must be quick and safe for concurrent use. A cache without an observer
// makes no calls and pays nothing for them.
type Observer interface {
	// Begin is called when an operation starts. The context it returns is
	// used for the rest of the operation (a load's loader receives it), so
	// an observer may put a span in it.
	Begin(ctx context.Context, op Operation) context.Context

	// Finish is called with the context Begin returned when the operation
	// ends.
	Finish(ctx context.Context, op Operation, out Outcome)

	// Event reports something that happened within an operation or in
	// the background.
	Event(ctx context.Context, e Event)
}

// OpKind names a cache operation.
type OpKind uint8

// The operations an [Observer] is told about. OpLoad is a loader call
// within a Get, begun and finished inside the Get's own operation.
const (
	OpGet OpKind = iota + 1
	OpLookup
	OpSet
	OpDelete
	OpInvalidateTags
	OpClear
	OpLoad
	OpInvalidatePrefix // Keys holds the prefix
	OpExpire           // Expire (Keys), ExpireTags (Tags), ExpirePrefix (Keys holds the prefix)
)

var opNames = [...]string{"", "get", "lookup", "set", "delete", "invalidate_tags", "clear", "load", "invalidate_prefix", "expire"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "unknown"
}

// Operation describes an operation to an [Observer].
type Operation struct {
	Kind OpKind
	// Key is the key of a Get, Lookup, Set or load. Keys may carry
	// personal data; observers should not export them unless asked to.
	Key string
	// Keys and Tags are the arguments of Delete and InvalidateTags.
	Keys []string
	Tags []string
}

// Result is how a read ended.
type Result uint8

// The results an [Outcome] reports.
const (
	ResultNone     Result = iota // writes and invalidations
	ResultHit                    // a fresh value from a layer
	ResultStale                  // a stale value, while revalidating or on a loader error
	ResultMiss                   // nothing found (Lookup), or the load failed
	ResultLoaded                 // the loader ran (or a concurrent load's value was shared)
	ResultNotFound               // a cached or loaded absence (ErrNotFound)
)

var resultNames = [...]string{"none", "hit", "stale", "miss", "loaded", "not_found"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// Outcome is how an operation ended.
type Outcome struct {
	Result Result
	// Layer is the name of the layer that answered a read, or "" when
	// none did.
	Layer string
	// Err is the operation's error, nil on success. ErrNotFound is
	// reported as ResultNotFound, not as an error.
	Err error
}

// EventKind names an [Event].
type EventKind uint8

// The events an [Observer] is told about.
const (
	// EventLayerOp: one operation on a layer outside the process ended;
	// Layer, Op, Duration and Err are set. Op "decode" with Err reports a
	// value that a layer returned but could not be decoded (corrupt or
	// foreign bytes), which the read took as a miss.
	EventLayerOp EventKind = iota + 1
	// EventBackfill: a hit in a lower layer was copied into Layer.
	EventBackfill
	// EventDeduplicated: a caller waited for a load already running.
	EventDeduplicated
	// EventStaleServed: a stale value was served.
	EventStaleServed
	// EventBreakerOpen and EventBreakerClose: Layer's circuit breaker
	// changed state.
	EventBreakerOpen
	EventBreakerClose
	// EventBusIn and EventBusOut: an invalidation message was received
	// from, or sent to, the other instances; Err is set for a failure.
	EventBusIn
	EventBusOut
	// EventInvalidation: in-process entries were dropped because of a
	// Delete, InvalidateTags, Clear or a bus reset.
	EventInvalidation
	// EventWriteBackDropped: a background write was dropped because the
	// queue was full.
	EventWriteBackDropped
	// EventJournalReplayed: invalidations that had failed on a layer or
	// the bus were replayed.
	EventJournalReplayed
	// EventJournalLost: an invalidation that failed could not be kept
	// because the journal was full; the in-process layers were dropped.
	EventJournalLost
)

var eventNames = [...]string{"", "layer_op", "backfill", "deduplicated", "stale_served", "breaker_open",
	"breaker_close", "bus_in", "bus_out", "invalidation", "write_back_dropped", "journal_replayed", "journal_lost"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing that happened, for [Observer.Event].
type Event struct {
	Kind     EventKind
	Layer    string
	Op       string // the layer operation: "get", "set", "delete", ...
	Key      string
	Duration time.Duration
	Err      error
}

// WithObserver sets the cache's observer. Default: none. An observer with an
// Enabled method that reports false (as the OpenTelemetry observer does on
// no-op providers) is not called at all.
func WithObserver(o Observer) Option { return func(c *settings) { c.observer = o } }
