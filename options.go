package layercache

import (
	"errors"
	"log/slog"
	"time"

	"github.com/layercache/layercache/driver"
)

// Option configures a [Cache] as a whole. It is a different type from
// [EntryOption], which configures one call, so the two cannot be mixed up.
type Option func(*settings)

type settings struct {
	bus          driver.Bus
	coordinator  driver.Coordinator
	degradation  Degradation
	codec        Codec
	clone        bool
	strictWrites bool
	defaults     []EntryOption
	logger       *slog.Logger
	namespace    string
	writeBack    int
	journal      int
	origin       OriginLimit
	observer     Observer
}

// Degradation says how the cache treats layers that are slow or down.
// Layers that are in-process are never degraded.
type Degradation struct {
	// Timeout bounds every operation on a layer that is not in-process and
	// does not bound its operations itself (driver.Timeouter, as the Redis
	// and disk layers do). Default: 100ms.
	Timeout time.Duration

	// FailureThreshold is how many failures or timeouts in a row open the
	// layer's circuit breaker. A corrupt value is not a failure (the layer
	// answered), nor is a caller that cancelled; a caller's own deadline
	// counts once the operation waited a twentieth of the timeout, so a
	// hung layer opens its breaker even behind callers with short
	// deadlines. Default: 5.
	FailureThreshold int

	// RetryAfter is how long an open breaker skips its layer before letting
	// one probe through (half-open). Default: 10s.
	RetryAfter time.Duration
}

func (d Degradation) withDefaults() Degradation {
	if d.Timeout == 0 {
		d.Timeout = 100 * time.Millisecond
	}
	if d.FailureThreshold == 0 {
		d.FailureThreshold = 5
	}
	if d.RetryAfter == 0 {
		d.RetryAfter = 10 * time.Second
	}
	return d
}

var (
	errNegativeDuration = errors.New("layercache: negative duration in options")
	errBadJitter        = errors.New("layercache: jitter must be in [0, 1)")
)

// WithBus sets the invalidation bus that carries Set, Delete,
// InvalidateTags and Clear to the other instances. The cache closes it on
// Close.
func WithBus(b driver.Bus) Option { return func(c *settings) { c.bus = b } }

// WithCoordinator sets the coordinator that makes a miss across instances
// run the loader once. The cache closes it on Close.
func WithCoordinator(co driver.Coordinator) Option {
	return func(c *settings) { c.coordinator = co }
}

// WithDegradation sets the timeouts and circuit-breaker policy for layers
// that are not in-process.
func WithDegradation(d Degradation) Option { return func(c *settings) { c.degradation = d } }

// WithCodec sets the codec for values stored outside the process. Default:
// [JSON]. []byte, string and time.Time values are always stored as they are.
func WithCodec(codec Codec) Option { return func(c *settings) { c.codec = codec } }

// WithClone makes the cache keep and hand out copies (made by encoding and
// decoding with the cache's codec), for callers that cannot promise not to
// mutate values: Set and a load store a copy, so changing the value given to
// Set or kept by a loader does not change the cache, and every read returns
// its own copy. It costs an encode and a decode per hit and per write.
func WithClone() Option { return func(c *settings) { c.clone = true } }

// WithStrictWrites makes a load wait until the loaded value is written to
// every layer. By default, when the stack has an in-process layer, only
// in-process layers are written before Get returns and the others are
// written in the background.
func WithStrictWrites() Option { return func(c *settings) { c.strictWrites = true } }

// WithDefaults sets EntryOptions applied to every call before the call's
// own, such as a default TTL or negative TTL.
func WithDefaults(opts ...EntryOption) Option {
	return func(c *settings) { c.defaults = append(c.defaults, opts...) }
}

// WithLogger sets the logger for problems that have no caller to return
// to: background writes, bus messages. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *settings) { c.logger = l } }

// WithNamespace names the cache's keyspace for the bus and coordinator.
// Default: "layercache".
func WithNamespace(ns string) Option { return func(c *settings) { c.namespace = ns } }

// WithWriteBackQueue bounds how many background writes may wait. When it is
// full, further background writes are dropped and counted in
// [Stats].WriteBackDropped: the value is then loaded again on a later miss.
// Default: 1024.
func WithWriteBackQueue(n int) Option { return func(c *settings) { c.writeBack = n } }

// WithJournalSize bounds how many failed invalidations (keys, tags, clears)
// the cache keeps to replay once their layer or the bus is back. When it is
// full, further failures are counted in [Stats].JournalLost and the cache
// drops its in-process layers instead. Default: 10000.
func WithJournalSize(n int) Option { return func(c *settings) { c.journal = n } }
