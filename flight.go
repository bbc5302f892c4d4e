package layercache

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache/driver"
)

// flights is the in-process single-flight of loads, and the in-flight guard
// that keeps an invalidation from being undone by an older value: a load's
// result, or a value a read copies from a lower layer into the upper ones.
//
// It is written by hand rather than on golang.org/x/sync/singleflight for
// two reasons. The loader runs on the leader's own goroutine (so a closure
// passed to Get never escapes to the heap), which means a leader whose
// context ends must be able to hand the load to a waiter; and invalidations
// must find the loads, reads and pending writes of a key or tag.
type flights struct {
	mu sync.Mutex
	// loading holds the call of each key whose load is running.
	loading map[string]*call
	// writing holds the other guarded calls: reads that may backfill, and
	// finished loads whose value is being written to layers in the
	// background or was written moments ago. An invalidation marks them
	// too; for a value already written to a shared layer the caller takes
	// it back, because another instance's invalidation may be heard here
	// only after our older value landed.
	writing map[*call]struct{}
	// lastPrune is when writing was last swept of expired guards.
	lastPrune time.Time
	// changes counts the loads that ended and the invalidations (every
	// write goes through mark), so that a batch read that looked before
	// joining can tell whether a key it found missing may have been
	// stored, or changed, in between.
	changes atomic.Uint64

	// seq numbers invalidations. A call remembers seq when it begins; a
	// tag invalidation stamps its tags' buckets with a new seq and a clear
	// stamps clearedAt. A guarded write of a tagged entry is dropped when
	// one of the entry's tags was stamped after its call began, because
	// the entry's own tags (read from a layer) may not be the ones the
	// caller named. Tags share buckets by hash: a collision only drops a
	// write that could have been kept.
	seq       atomic.Uint64
	clearedAt atomic.Uint64
	tagStamps [tagBuckets]atomic.Uint64
}

const tagBuckets = 256

func tagBucket(tag string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(tag); i++ {
		h = (h ^ uint32(tag[i])) * 16777619
	}
	return int(h % tagBuckets)
}

// stampTags records that tags (all tags, when nil) were invalidated now.
func (f *flights) stampTags(tags []string) {
	s := f.seq.Add(1)
	if tags == nil {
		f.clearedAt.Store(s)
		return
	}
	for _, t := range tags {
		f.tagStamps[tagBucket(t)].Store(s)
	}
}

// writeGuardGrace is how long a value written in the background stays
// guarded after the write: long enough for another instance's
// invalidation, sent after its own write, to arrive over the bus.
const writeGuardGrace = 2 * time.Second

// call is one guarded operation on one key: a load, or a read that may
// backfill. Its result fields are written once, before done is closed, and
// read only after.
type call struct {
	key string
	// keys are the keys of a guard over a batch read (key is then ""):
	// an invalidation of any of them marks the guard.
	keys  []string
	tags  []string
	begun uint64 // flights.seq when the call began
	// done is closed when the call is settled. It is made, under
	// flights.mu, only when a waiter joins: most loads have none.
	done chan struct{}

	val       any
	err       error
	settled   bool // done is closed; guarded by flights.mu
	abandoned bool // the leader left before the load ended; a waiter retries

	// early is closed when the leader found a value it may serve while it
	// refreshes it (stale-while-revalidate, early refresh): waiters take
	// served at once instead of waiting for the refresh. Both are set
	// under flights.mu, early only once a waiter joins, so a load nobody
	// waits for allocates neither.
	early  chan struct{}
	served *served

	// invalidated is set when the key (or one of its tags) was
	// invalidated after the call began: a load's value is returned to the
	// callers who asked before, but never written to a layer.
	invalidated atomic.Bool
	waiters     atomic.Int32
	// writtenAt is when the background write of the value ended (Unix
	// nanoseconds), 0 before; wire is the entry it wrote.
	writtenAt atomic.Int64
	wire      *driver.Entry
}

// stale reports whether a write of e on behalf of c must not happen (or
// must be taken back): the key was invalidated, everything was cleared, or
// one of e's tags was invalidated since c began.
func (f *flights) stale(c *call, e *driver.Entry) bool {
	if c.invalidated.Load() || f.clearedAt.Load() > c.begun {
		return true
	}
	if e == nil {
		return false
	}
	for _, t := range e.Tags {
		if f.tagStamps[tagBucket(t)].Load() > c.begun {
			return true
		}
	}
	return false
}

func newFlights() *flights {
	return &flights{loading: make(map[string]*call), writing: make(map[*call]struct{})}
}

// newCall copies tags: they come from the caller's options, which must not
// escape to the heap on the hit path. f.mu is held.
func (f *flights) newCall(key string, tags []string) *call {
	return &call{key: key, tags: slices.Clone(tags), begun: f.seq.Load()}
}

// join returns the running call for key, or registers a new one and
// reports that the caller leads it.
func (f *flights) join(key string, tags []string) (c *call, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.loading[key]; ok {
		c.addWaiter()
		return c, false
	}
	c = f.newCall(key, tags)
	f.loading[key] = c
	return c, true
}

// addWaiter makes c ready for one more waiter. f.mu is held.
func (c *call) addWaiter() {
	c.waiters.Add(1)
	if c.done == nil {
		c.done = make(chan struct{})
	}
	if c.early == nil {
		c.early = make(chan struct{})
		if c.served != nil {
			close(c.early)
		}
	}
}

// leave withdraws a waiter that will not wait after all.
func (f *flights) leave(c *call) { c.waiters.Add(-1) }

// tryLead registers a new call for key unless one is running, in which
// case it returns nil, false without joining it.
func (f *flights) tryLead(key string, tags []string) (*call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.loading[key]; ok {
		return nil, false
	}
	c := f.newCall(key, tags)
	f.loading[key] = c
	return c, true
}

// guard registers a read of key that may backfill, so that an invalidation
// meanwhile marks it. The caller must release it.
func (f *flights) guard(key string) *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.newCall(key, nil)
	f.writing[c] = struct{}{}
	return c
}

// guardMany is guard for a batch read of keys, as one call: an
// invalidation of any of them marks it, and so stops every backfill of the
// batch, which costs at most a few reads of a lower layer later.
func (f *flights) guardMany(keys []string) *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &call{keys: keys, begun: f.seq.Load()}
	f.writing[c] = struct{}{}
	return c
}

// hasKey reports whether match holds for c's key, or any of a batch
// guard's keys.
func (c *call) hasKey(match func(key string) bool) bool {
	if c.keys != nil {
		return slices.ContainsFunc(c.keys, match)
	}
	return match(c.key)
}

// finish publishes the leader's result and wakes the waiters. When keep is
// true the call stays guarded, because its value is still being written to
// layers. finish and abandon do nothing to a call already settled.
func (f *flights) finish(c *call, val any, err error, keep bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle(c, val, err, keep)
}

// settle is finish with f.mu held.
func (f *flights) settle(c *call, val any, err error, keep bool) {
	if c.settled {
		return
	}
	delete(f.loading, c.key)
	f.changes.Add(1)
	if keep {
		f.writing[c] = struct{}{}
	}
	c.val, c.err = val, err
	c.settled = true
	if c.done != nil {
		close(c.done)
	}
}

// joinMany is join for many distinct keys under one lock: calls[i] is the
// call of keys[i], and lead[i] reports whether the caller leads it. The
// calls it makes share one allocation and one copy of tags.
func (f *flights) joinMany(keys, tags []string) (calls []*call, lead []bool) {
	calls, lead = make([]*call, len(keys)), make([]bool, len(keys))
	made := make([]call, len(keys))
	tags = slices.Clone(tags)
	f.mu.Lock()
	defer f.mu.Unlock()
	begun := f.seq.Load()
	for i, k := range keys {
		if c, ok := f.loading[k]; ok {
			c.addWaiter()
			calls[i] = c
			continue
		}
		c := &made[i]
		c.key, c.tags, c.begun = k, tags, begun
		f.loading[k] = c
		calls[i], lead[i] = c, true
	}
	return calls, lead
}

// settled is the result of one call of a batch, for finishMany.
type settled[V any] struct {
	call *call
	val  V
	err  error
	keep bool // as for finish
}

// finishMany is finish for many calls under one lock. A value is boxed for
// a call's waiters only when it has some: most batch reads have none.
func finishMany[V any](f *flights, results []settled[V]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range results {
		r := &results[i]
		var val any
		if r.err == nil && r.call.done != nil {
			val = r.val
		}
		f.settle(r.call, val, r.err, r.keep)
	}
}

// abandonMany is abandon for many calls under one lock.
func (f *flights) abandonMany(calls []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range calls {
		f.drop(c)
	}
}

// served is a value the leader of a call hands its waiters while it
// refreshes the value.
type served struct {
	val   any
	err   error
	layer string
	stale bool // val is past its freshness
}

// serveEarly hands the waiters of c a value to return while the leader
// refreshes it. It does nothing once c is settled or already serving one.
func (f *flights) serveEarly(c *call, s served) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.settled || c.served != nil {
		return
	}
	c.served = &s
	if c.early != nil {
		close(c.early)
	}
}

// abandon wakes the waiters without a result so that one of them loads.
func (f *flights) abandon(c *call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop(c)
}

// drop is abandon with f.mu held.
func (f *flights) drop(c *call) {
	if c.settled {
		return
	}
	delete(f.loading, c.key)
	f.changes.Add(1)
	c.abandoned = true
	c.settled = true
	if c.done != nil {
		close(c.done)
	}
}

// release ends the guard on a call, at once.
func (f *flights) release(c *call) {
	f.mu.Lock()
	delete(f.writing, c)
	f.mu.Unlock()
}

// written records that the background write of c's value ended, and
// reports whether an invalidation was heard while it ran: the value must
// then be taken back, as the invalidation found nothing written to undo.
// The guard lasts writeGuardGrace more and is swept after that.
func (f *flights) written(c *call) (undo bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	c.writtenAt.Store(now.UnixNano())
	f.prune(now)
	return f.stale(c, c.wire)
}

// prune drops guards whose grace has passed, at most a few times a second.
// f.mu is held.
func (f *flights) prune(now time.Time) {
	if now.Sub(f.lastPrune) < writeGuardGrace/8 {
		return
	}
	f.lastPrune = now
	for c := range f.writing {
		if at := c.writtenAt.Load(); at != 0 && now.UnixNano()-at > int64(writeGuardGrace) {
			delete(f.writing, c)
		}
	}
}

// wait blocks until c has a result, a value served early, or ctx ends. It
// reports which of the first two it got; a result is preferred. Only a
// caller that joined c as a waiter may call it.
func (c *call) wait(ctx context.Context) (early bool, err error) {
	select {
	case <-c.done:
		return false, nil
	case <-c.early:
		select {
		case <-c.done:
			return false, nil
		default:
			return true, nil
		}
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// invalidateKeys marks the loads, reads and pending writes of keys. It
// returns the finished loads whose value was already written: they must be
// taken back.
func (f *flights) invalidateKeys(keys []string) (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mark(func(c *call) bool {
		return c.hasKey(func(k string) bool { return slices.Contains(keys, k) })
	})
}

// invalidateAllTags marks the loads, reads and pending writes carrying
// every one of tags, and returns the finished loads already written. The
// tags' stamps move as for invalidateTags: a write whose entry's tags were
// not known when its call began is dropped if it carries any of them, which
// costs at most a load.
func (f *flights) invalidateAllTags(tags []string) (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stampTags(tags)
	hasAll := func(have []string) bool {
		for _, t := range tags {
			if !slices.Contains(have, t) {
				return false
			}
		}
		return true
	}
	return f.mark(func(c *call) bool {
		return hasAll(c.tags) || (c.writtenAt.Load() != 0 && c.wire != nil && hasAll(c.wire.Tags))
	})
}

// invalidatePrefix marks the loads, reads and pending writes of keys under
// prefix, and returns the finished loads already written.
func (f *flights) invalidatePrefix(prefix string) (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mark(func(c *call) bool {
		return c.hasKey(func(k string) bool { return strings.HasPrefix(k, prefix) })
	})
}

// invalidateTags marks the loads, reads and pending writes carrying any of
// tags (and moves the tag epoch, for those whose entry carries tags the
// caller did not name), and returns the finished loads already written.
func (f *flights) invalidateTags(tags []string) (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stampTags(tags)
	hasTag := func(have []string) bool {
		for _, t := range have {
			if slices.Contains(tags, t) {
				return true
			}
		}
		return false
	}
	return f.mark(func(c *call) bool {
		// A written value's own tags are known: they are in its entry.
		return hasTag(c.tags) || (c.writtenAt.Load() != 0 && c.wire != nil && hasTag(c.wire.Tags))
	})
}

// invalidateAll marks every load, read and pending write, and returns the
// finished loads already written.
func (f *flights) invalidateAll() (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stampTags(nil)
	return f.mark(func(*call) bool { return true })
}

// mark marks the loads and guarded calls that match and returns those
// whose value was already written (a job can end before its load is
// finished). f.mu is held, so that written cannot run between a mark and
// its check.
func (f *flights) mark(match func(*call) bool) (written []*call) {
	f.changes.Add(1)
	f.prune(time.Now())
	visit := func(c *call) {
		if match(c) && !c.invalidated.Swap(true) && c.writtenAt.Load() != 0 {
			written = append(written, c)
		}
	}
	for _, c := range f.loading {
		visit(c)
	}
	for c := range f.writing {
		visit(c)
	}
	return written
}
