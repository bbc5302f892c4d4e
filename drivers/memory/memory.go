package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/layercache/layercache/driver"
)

// DefaultMaxSize is the number of entries a layer holds when
// [Options.MaxSize] is zero.
const DefaultMaxSize = 10000

// Options configure a memory [Layer]. The zero value is a layer of
// [DefaultMaxSize] entries that keeps each entry until its own expiry.
type Options struct {
	// TTL is an upper bound on how long any entry is kept, whatever its own
	// ExpiresAt says. Negative is an error.
	// Default: 0, entries live until their own ExpiresAt (or forever if
	// they have none) unless evicted for size.
	TTL time.Duration `yaml:"ttl"`

	// MaxSize is the maximum number of entries; beyond it the entries least
	// likely to be used again are evicted. Negative is an error.
	// Default: 10000 (DefaultMaxSize).
	MaxSize int `yaml:"max_size"`
}

// optionError names the option that failed validation, so that [New] and the
// configuration path can phrase it each in their own terms.
type optionError struct {
	key string // YAML key of the option
	msg string
}

func (o Options) validate() *optionError {
	if o.TTL < 0 {
		return &optionError{"ttl", fmt.Sprintf("must not be negative, got %v", o.TTL)}
	}
	if o.MaxSize < 0 {
		return &optionError{"max_size", fmt.Sprintf("must not be negative, got %d", o.MaxSize)}
	}
	return nil
}

// Layer is an in-process cache layer. It is safe for concurrent use. Create
// it with [New] and release it with [Layer.Close].
type Layer struct {
	cache *otter.Cache[string, *driver.Entry]
	ttl   time.Duration

	// tasks counts the maintenance goroutines started by maintain, so
	// that Close can wait for them: StopAllGoroutines stops only the
	// periodic clean-up. tasksMu orders their start with Close: once
	// closed is set, none starts.
	tasks   sync.WaitGroup
	tasksMu sync.Mutex
	closed  bool

	// start is the origin of lastInline, on the monotonic clock.
	start time.Time
	// lastInline is when maintenance last ran on the goroutine that
	// triggered it, in nanoseconds since start.
	lastInline atomic.Int64

	closeOnce sync.Once
}

// New returns a memory layer configured by o. It fails if o.TTL or
// o.MaxSize is negative.
func New(o Options) (*Layer, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("layercache/memory: %s %s", err.key, err.msg)
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	l := &Layer{ttl: o.TTL, start: time.Now()}
	l.lastInline.Store(-int64(inlineMaintenanceGap))
	c, err := otter.New(&otter.Options[string, *driver.Entry]{
		MaximumSize:      o.MaxSize,
		ExpiryCalculator: otter.ExpiryWritingFunc(l.expiresAfter),
		Executor:         l.maintain,
		// Otter's default clock is kept: it reads only the monotonic clock,
		// which halves the cost of a hit next to reading the wall clock
		// that Entry.ExpiresAt is measured on. expiresAfter converts
		// between the two at each write.
	})
	if err != nil {
		return nil, fmt.Errorf("layercache/memory: %w", err)
	}
	l.cache = c
	return l, nil
}

// inlineMaintenanceGap is how long after maintenance last ran inline it
// may run inline again; see maintain.
const inlineMaintenanceGap = 100 * time.Microsecond

// maintain is otter's executor, which runs its maintenance: draining the
// buffers where reads and writes are recorded for the eviction policy,
// evicting, expiring. Otter asks for it about once every 16 reads of a
// stripe, and after writes.
//
// Maintenance that comes rarely, as in a process that is mostly idle, runs
// on the goroutine that asks for it, where it usually takes a few
// microseconds (one that follows many writes and evicts takes longer; under
// write pressure otter has writers do that work whatever the executor).
// Starting a goroutine instead, as otter's default executor does,
// would wake an idle processor's thread: that costs the reader more than
// the maintenance itself, tens of microseconds on some virtual machines.
// When it comes often, on a busy process, one run in 100µs still runs
// inline and the others go to a goroutine: there is seldom an idle
// processor to wake, the readers of hot keys mostly stay off the cache
// lines maintenance writes, and while a drain waits its turn otter's lossy
// read buffer drops what it cannot hold instead of making readers wait.
func (l *Layer) maintain(f func()) {
	now := int64(time.Since(l.start))
	if last := l.lastInline.Load(); now-last >= int64(inlineMaintenanceGap) && l.lastInline.CompareAndSwap(last, now) {
		f()
		return
	}
	l.tasksMu.Lock()
	if l.closed {
		// Close is waiting for the goroutines, or has: a caller still
		// writing runs what maintenance is left itself.
		l.tasksMu.Unlock()
		f()
		return
	}
	l.tasks.Add(1)
	l.tasksMu.Unlock()
	go func() {
		defer l.tasks.Done()
		f()
	}()
}

// neverExpires is the lifetime otter is given for an entry that has no
// deadline: otter saturates the sum instead of overflowing.
const neverExpires = time.Duration(math.MaxInt64)

// expiresAfter is otter's expiry calculator: the entry lives until its own
// deadline or the layer's TTL, whichever comes first. It runs on every write,
// so an overwrite replaces the old deadline rather than keeping it.
func (l *Layer) expiresAfter(oe otter.Entry[string, *driver.Entry]) time.Duration {
	d := l.ttl
	if at := oe.Value.ExpiresAt; at != 0 {
		// Otter adds the result to its own clock, read just before this
		// call, so the deadline falls on ExpiresAt, a few nanoseconds early
		// rather than late. Otter never returns an entry past its deadline,
		// so Get needs no expiry check of its own. Only a step of the wall
		// clock between this write and a read could make the two clocks
		// disagree, by the size of the step.
		left := time.Duration(at - time.Now().UnixNano())
		if left <= 0 {
			// Otter keeps the previous deadline for a non-positive
			// duration; the shortest positive one expires the entry now.
			return 1
		}
		if d == 0 || left < d {
			d = left
		}
	}
	if d == 0 {
		return neverExpires
	}
	return d
}

// Get returns the entry stored under key, or nil, nil on a miss. It never
// returns an entry whose ExpiresAt has passed. The entry is the one given to
// [Layer.Set], shared with every other caller: it must not be modified. Get
// does not allocate.
func (l *Layer) Get(_ context.Context, key string) (*driver.Entry, error) {
	e, _ := l.cache.GetIfPresent(key)
	return e, nil
}

// Set stores e under key, replacing any previous entry. The layer keeps the
// pointer itself; neither side may modify e afterwards. An entry that has
// already expired removes the key instead.
func (l *Layer) Set(_ context.Context, key string, e *driver.Entry) error {
	if e == nil {
		return errors.New("layercache/memory: Set with a nil entry")
	}
	if e.ExpiresAt != 0 && e.Expired(time.Now().UnixNano()) {
		l.cache.Invalidate(key)
		return nil
	}
	l.cache.Set(key, e)
	return nil
}

// Delete removes the keys. Absent keys are ignored.
func (l *Layer) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		l.cache.Invalidate(k)
	}
	return nil
}

// DeleteIfHolds removes key only while the layer holds exactly e there (the
// same pointer given to Set), so a newer entry written meanwhile survives.
func (l *Layer) DeleteIfHolds(_ context.Context, key string, e *driver.Entry) error {
	l.cache.ComputeIfPresent(key, func(held *driver.Entry) (*driver.Entry, otter.ComputeOp) {
		if held == e {
			return nil, otter.InvalidateOp
		}
		return held, otter.CancelOp
	})
	return nil
}

// Clear removes every entry.
func (l *Layer) Clear(context.Context) error {
	l.cache.InvalidateAll()
	return nil
}

// InvalidateTags removes every entry that carries at least one of tags.
//
// It scans the entries rather than keeping a tag index: the layer holds at
// most MaxSize entries, tag invalidations are rare next to reads and writes,
// and an index would cost every Set and every eviction a second structure to
// update consistently. Each match is removed only if the entry then under
// its key still carries a tag, so a concurrent overwrite without the tag
// survives.
func (l *Layer) InvalidateTags(_ context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	drop := func(e *driver.Entry) (*driver.Entry, otter.ComputeOp) {
		if hasAnyTag(e, tags) {
			return nil, otter.InvalidateOp
		}
		return e, otter.CancelOp
	}
	for key, e := range l.cache.All() {
		if hasAnyTag(e, tags) {
			l.cache.ComputeIfPresent(key, drop)
		}
	}
	return nil
}

func hasAnyTag(e *driver.Entry, tags []string) bool {
	for _, t := range tags {
		if e.HasTag(t) {
			return true
		}
	}
	return false
}

// Range calls fn with each entry the layer holds until fn returns false.
func (l *Layer) Range(ctx context.Context, fn func(key string, e *driver.Entry) bool) error {
	now := time.Now().UnixNano()
	for key, e := range l.cache.All() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Expired(now) {
			continue
		}
		if !fn(key, e) {
			return nil
		}
	}
	return nil
}

// Len returns the approximate number of entries held, which may include
// expired entries not yet cleaned up.
func (l *Layer) Len() int {
	return l.cache.EstimatedSize()
}

// Name returns "memory".
func (l *Layer) Name() string { return "memory" }

// InProcess marks the layer as living in the process's memory: the cache
// stores decoded values in it.
func (l *Layer) InProcess() {}

// Close stops the goroutines the layer started and waits for them to
// return. It is safe to call more than once; the layer must not be used
// after.
func (l *Layer) Close() error {
	l.closeOnce.Do(func() {
		l.tasksMu.Lock()
		l.closed = true
		l.tasksMu.Unlock()
		l.cache.StopAllGoroutines()
		l.tasks.Wait()
	})
	return nil
}

var (
	_ driver.Layer              = (*Layer)(nil)
	_ driver.InProcess          = (*Layer)(nil)
	_ driver.Namer              = (*Layer)(nil)
	_ driver.Clearer            = (*Layer)(nil)
	_ driver.TagInvalidator     = (*Layer)(nil)
	_ driver.ConditionalDeleter = (*Layer)(nil)
	_ driver.Ranger             = (*Layer)(nil)
)
