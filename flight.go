package layercache

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/layercache/layercache/driver"
)

// flights is the in-process single-flight of loads, and the in-flight guard
// that keeps an invalidation from being undone by an older load.
//
// It is written by hand rather than on golang.org/x/sync/singleflight for
// two reasons. The loader runs on the leader's own goroutine (so a closure
// passed to Get never escapes to the heap), which means a leader whose
// context ends must be able to hand the load to a waiter; and invalidations
// must find the loads and pending background writes of a key or tag.
type flights struct {
	mu sync.Mutex
	// loading holds the call of each key whose load is running.
	loading map[string]*call
	// writing holds finished calls whose value is being written to layers
	// in the background, or was written moments ago: an invalidation marks
	// them too, and for those already written the caller deletes the key
	// again, because another instance's invalidation may be heard here only
	// after our older value landed in a shared layer.
	writing map[*call]struct{}
}

// call is one load of one key. Its result fields are written once, before
// done is closed, and read only after.
type call struct {
	key  string
	tags []string
	done chan struct{}

	val       any
	err       error
	abandoned bool // the leader left before the load ended; a waiter retries

	// invalidated is set when the key (or one of its tags) was
	// invalidated after the load began: its value is returned to the
	// callers who asked before, but never written to a layer.
	invalidated atomic.Bool
	waiters     atomic.Int32
	// written is set once the background write of the value has ended;
	// wire is the entry it wrote.
	written atomic.Bool
	wire    *driver.Entry
}

// newCall copies tags: they come from the caller's options, which must not
// escape to the heap on the hit path.
func newCall(key string, tags []string) *call {
	return &call{key: key, tags: slices.Clone(tags), done: make(chan struct{})}
}

func newFlights() *flights {
	return &flights{loading: make(map[string]*call), writing: make(map[*call]struct{})}
}

// join returns the running call for key, or registers a new one and
// reports that the caller leads it.
func (f *flights) join(key string, tags []string) (c *call, leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.loading[key]; ok {
		c.waiters.Add(1)
		return c, false
	}
	c = newCall(key, tags)
	f.loading[key] = c
	return c, true
}

// tryLead registers a new call for key unless one is running, in which
// case it returns nil, false without joining it.
func (f *flights) tryLead(key string, tags []string) (*call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.loading[key]; ok {
		return nil, false
	}
	c := newCall(key, tags)
	f.loading[key] = c
	return c, true
}

// finish publishes the leader's result and wakes the waiters. When keep is
// true the call stays guarded until release, because its value is still
// being written to layers.
func (f *flights) finish(c *call, val any, err error, keep bool) {
	f.mu.Lock()
	delete(f.loading, c.key)
	if keep {
		f.writing[c] = struct{}{}
	}
	c.val, c.err = val, err
	f.mu.Unlock()
	close(c.done)
}

// abandon wakes the waiters without a result so that one of them loads.
func (f *flights) abandon(c *call) {
	f.mu.Lock()
	delete(f.loading, c.key)
	c.abandoned = true
	f.mu.Unlock()
	close(c.done)
}

// release ends the guard on a call whose background writes are done.
func (f *flights) release(c *call) {
	f.mu.Lock()
	delete(f.writing, c)
	f.mu.Unlock()
}

// wait blocks until c has a result or ctx ends.
func (c *call) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// invalidateKeys marks the loads and pending writes of keys. It returns the
// keys whose value was already written: they must be deleted again.
func (f *flights) invalidateKeys(keys []string) (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if c, ok := f.loading[k]; ok {
			c.invalidated.Store(true)
		}
	}
	return f.markWriting(func(c *call) bool { return slices.Contains(keys, c.key) })
}

// markWriting marks the pending writes that match and returns those
// already written.
func (f *flights) markWriting(match func(*call) bool) (written []*call) {
	for c := range f.writing {
		if match(c) && !c.invalidated.Swap(true) && c.written.Load() {
			written = append(written, c)
		}
	}
	return written
}

// invalidateTags marks the loads and pending writes carrying any of tags,
// and returns the keys whose value was already written.
func (f *flights) invalidateTags(tags []string) (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hit := func(c *call) bool {
		for _, t := range c.tags {
			if slices.Contains(tags, t) {
				return true
			}
		}
		return false
	}
	for _, c := range f.loading {
		if hit(c) {
			c.invalidated.Store(true)
		}
	}
	return f.markWriting(hit)
}

// invalidateAll marks every load and pending write, and returns the keys
// whose value was already written.
func (f *flights) invalidateAll() (written []*call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.loading {
		c.invalidated.Store(true)
	}
	return f.markWriting(func(*call) bool { return true })
}
