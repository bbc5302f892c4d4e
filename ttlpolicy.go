package layercache

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache/driver"
)

// WithAdaptiveTTL lets keys that are read often live longer: the entry's
// TTL (WithTTL) is what a key read once gets, and each doubling of how
// often this instance has read the key lately doubles it, up to max. Reads
// are counted in a small fixed-size sketch that forgets slowly, so a key
// that cools down gets short lifetimes again. It costs the hit path a
// counter increment (a plain fresh hit otherwise counts nothing).
func WithAdaptiveTTL(max time.Duration) EntryOption {
	return EntryOption{kind: optAdaptive, d: max}
}

// frequency is a count-min sketch of reads per key: four rows of 4096
// small counters, halved every 40960 reads so that old popularity fades.
type frequency struct {
	seed  maphash.Seed
	rows  [frequencyRows][frequencyWidth]atomic.Uint32
	reads atomic.Uint64
}

const (
	frequencyRows  = 4
	frequencyWidth = 1 << 12
	frequencyAge   = 10 * frequencyWidth
)

func newFrequency() *frequency { return &frequency{seed: maphash.MakeSeed()} }

// add counts a read of key.
func (f *frequency) add(key string) {
	h := maphash.String(f.seed, key)
	for r := range frequencyRows {
		f.rows[r][(h>>(16*r))&(frequencyWidth-1)].Add(1)
	}
	if f.reads.Add(1)%frequencyAge == 0 {
		f.age()
	}
}

// estimate returns how often key was read lately (an upper bound).
func (f *frequency) estimate(key string) uint32 {
	h := maphash.String(f.seed, key)
	least := uint32(1<<32 - 1)
	for r := range frequencyRows {
		least = min(least, f.rows[r][(h>>(16*r))&(frequencyWidth-1)].Load())
	}
	return least
}

// age halves every counter. Reads racing it may be halved or not.
func (f *frequency) age() {
	for r := range f.rows {
		for i := range f.rows[r] {
			c := &f.rows[r][i]
			c.Store(c.Load() / 2)
		}
	}
}

// reads returns the cache's read sketch, making it (64 KiB) the first time
// an adaptive TTL is used.
func (c *Cache) reads() *frequency {
	if f := c.frequency.Load(); f != nil {
		return f
	}
	c.frequency.CompareAndSwap(nil, newFrequency())
	return c.frequency.Load()
}

// adaptiveTTL is base doubled for each doubling of key's reads, up to max.
func (c *Cache) adaptiveTTL(key string, base, max time.Duration) time.Duration {
	reads := c.reads().estimate(key)
	if reads <= 1 || base <= 0 {
		return min(base, max)
	}
	shift := bits.Len32(reads) - 1
	if shift >= 62 || base > max>>shift {
		return max
	}
	return base << shift
}

// slide extends the freshness of the in-process entry e of key by the
// sliding window, bounded by the entry's maximum lifetime, once less than
// half of the window is left. The write is guarded like a backfill, so an
// invalidation racing it wins.
func (c *Cache) slide(ctx context.Context, key string, e *driver.Entry, now int64, eo *entryOptions) {
	if e.StaleAt == 0 || e.StaleAt-now >= int64(eo.slidingIdle/2) {
		return
	}
	bound := e.ExpiresAt
	if w := int64(eo.staleWindow()); bound != 0 && bound-w > 0 {
		bound -= w
	}
	stale := deadline(now, eo.slidingIdle)
	if bound != 0 {
		stale = min(stale, bound)
	}
	if stale <= e.StaleAt {
		return
	}
	slid := *e
	slid.StaleAt = stale
	guard := c.flights.guard(key)
	_ = c.writeGuarded(ctx, guard, key, []*layer{c.l1}, &slid)
	c.flights.release(guard)
}

// WithExpiryAligned makes the entry fresh until the next boundary of
// interval, counted from midnight in loc (nil: UTC), instead of for a TTL:
// 24h expires at midnight, time.Hour at the top of the hour, 15*time.Minute
// at the next quarter. Every entry written between two boundaries goes
// stale at the same instant, which is the point (prices valid until the end
// of the day); add stale-while-revalidate or early refresh so that hot keys
// are not all reloaded at once. Jitter does not apply to it. Days with a
// daylight-saving change have boundaries counted in elapsed time from that
// day's midnight.
func WithExpiryAligned(interval time.Duration, loc *time.Location) EntryOption {
	return EntryOption{kind: optAlign, d: interval, f: float64(locations.index(loc))}
}

// locations numbers the locations of aligned expiries. Options carry the
// number, not the pointer: a pointer in an option would let escape
// analysis see every call's options reach the heap, and each Get would
// allocate.
var locations = &locationTable{byLoc: map[*time.Location]int{}}

type locationTable struct {
	mu    sync.RWMutex
	locs  []*time.Location
	byLoc map[*time.Location]int
}

func (t *locationTable) index(loc *time.Location) int {
	if loc == nil {
		loc = time.UTC
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.byLoc[loc]; ok {
		return i
	}
	t.locs = append(t.locs, loc)
	t.byLoc[loc] = len(t.locs) - 1
	return len(t.locs) - 1
}

func (t *locationTable) at(i int) *time.Location {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if i < 0 || i >= len(t.locs) {
		return time.UTC
	}
	return t.locs[i]
}

// WithSlidingTTL keeps an entry fresh for idle after its last read in this
// instance, but never longer than max after it was written: each hit in
// the in-process layer that finds less than half of idle left slides the
// entry's freshness (a session that stays alive while it is used). The
// slide is made in the in-process layer only; a copy in a shared layer
// keeps the window it was written with until it is written again. It
// replaces WithTTL for the entries it applies to.
func WithSlidingTTL(idle, max time.Duration) EntryOption {
	return EntryOption{kind: optSliding, d: idle, f: float64(max)}
}

// untilBoundary is how long from now until the next boundary of o.align.
func (o *entryOptions) untilBoundary(now time.Time) time.Duration {
	loc := locations.at(o.alignIn)
	t := now.In(loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	elapsed := t.Sub(midnight)
	next := midnight.Add((elapsed/o.align + 1) * o.align)
	if tomorrow := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc); next.After(tomorrow) {
		next = tomorrow // an interval that does not divide the day starts again at midnight
	}
	return next.Sub(t)
}
