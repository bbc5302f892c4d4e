package layercache

import (
	"context"
	"sync"

	"github.com/layercache/layercache/driver"
)

// writeBack writes loaded values to the layers outside the process after Get
// has returned, so a slow Redis never holds up a caller that already has its
// value. The queue is bounded; when it is full the write is dropped and
// counted, and the value is simply loaded again on a later miss.
type writeBack struct {
	jobs chan writeJob
	wg   sync.WaitGroup

	// mu makes enqueue and close exclusive: a load or a bus message may
	// still try to queue a write while the cache closes.
	mu     sync.RWMutex
	closed bool
}

type writeJob struct {
	call   *call // the guard of the load or read whose value this is
	key    string
	layers []*layer
	entry  *driver.Entry
	// undo, instead of writing entry, takes it back from layers where it
	// is still what they hold.
	undo bool
}

const writeBackWorkers = 2

func newWriteBack(size int, run func(writeJob)) *writeBack {
	w := &writeBack{jobs: make(chan writeJob, size)}
	w.wg.Add(writeBackWorkers)
	for range writeBackWorkers {
		go func() {
			defer w.wg.Done()
			for job := range w.jobs {
				run(job)
			}
		}()
	}
	return w
}

// enqueue hands a job to the workers and reports false when the queue is
// full or closed.
func (w *writeBack) enqueue(job writeJob) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	select {
	case w.jobs <- job:
		return true
	default:
		return false
	}
}

// close stops accepting jobs and waits until the queued ones are written.
// Each write runs under its layer's timeout, so this ends.
func (w *writeBack) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// writeGuarded writes e to layers unless the load it came from was
// invalidated, and deletes it again if the invalidation raced the write:
// whichever of the two lands last, the invalidation wins.
func (c *Cache) writeGuarded(ctx context.Context, cl *call, key string, layers []*layer, e *driver.Entry) error {
	var errs []error
	for _, l := range layers {
		if cl != nil && c.flights.stale(cl, e) {
			return nil
		}
		if err := l.set(ctx, key, e); err != nil {
			errs = append(errs, err)
			continue
		}
		if cl != nil && c.flights.stale(cl, e) {
			// Only our own value: a Set may have replaced it already.
			_ = l.deleteIfHolds(ctx, key, e)
		}
	}
	return joinErrors(errs)
}

// enqueue queues a background write, counting it when the queue is full.
func (c *Cache) enqueue(ctx context.Context, job writeJob) bool {
	if c.writeBack.enqueue(job) {
		return true
	}
	c.writeBackDropped.Add(1)
	c.event(ctx, Event{Kind: EventWriteBackDropped, Key: job.key})
	return false
}

func (c *Cache) runWriteJob(job writeJob) {
	ctx := context.Background()
	if job.undo {
		for _, l := range job.layers {
			if err := l.deleteIfHolds(ctx, job.key, job.entry); err != nil {
				c.logger.Debug("layercache: cannot take back a write", "key", job.key, "err", err)
			}
		}
		return
	}
	c.writeRemote(ctx, job.call, job.key, job.layers, job.entry)
}

// writeRemote writes a loaded or backfilled entry to layers outside the
// process and keeps cl guarded for the grace period after, so that an
// invalidation heard late still takes the value back.
func (c *Cache) writeRemote(ctx context.Context, cl *call, key string, layers []*layer, e *driver.Entry) {
	err := c.writeGuarded(ctx, cl, key, layers, e)
	if cl != nil && c.flights.written(cl) {
		// Invalidated while the write ran, too late for writeGuarded's
		// own check on some layer: take the value back everywhere.
		c.undoWrites([]*call{cl})
	}
	if err != nil {
		c.logger.Debug("layercache: write failed", "key", key, "err", err)
	}
}

// writeRemoteMany is writeRemote for the values of a batch load, with one
// batch write per layer (a Redis pipeline) instead of one round trip per
// key. Every job names the same layers.
func (c *Cache) writeRemoteMany(ctx context.Context, jobs []writeJob) {
	if len(jobs) == 0 {
		return
	}
	keys := make([]string, 0, len(jobs))
	entries := make([]*driver.Entry, 0, len(jobs))
	for _, l := range jobs[0].layers {
		keys, entries = keys[:0], entries[:0]
		var written []writeJob
		for _, job := range jobs {
			if !c.flights.stale(job.call, job.entry) {
				keys, entries = append(keys, job.key), append(entries, job.entry)
				written = append(written, job)
			}
		}
		if len(keys) == 0 {
			continue
		}
		if err := l.setMany(ctx, keys, entries); err != nil {
			// Some keys may have landed all the same (a layer refuses
			// one entry and writes the others): check them all below.
			c.logger.Debug("layercache: batch write failed", "layer", l.name, "keys", len(keys), "err", err)
		}
		for _, job := range written {
			if c.flights.stale(job.call, job.entry) {
				// Only our own value: a Set may have replaced it already.
				_ = l.deleteIfHolds(ctx, job.key, job.entry)
			}
		}
	}
	var undo []*call
	for _, job := range jobs {
		if c.flights.written(job.call) {
			undo = append(undo, job.call)
		}
	}
	c.undoWrites(undo)
}

// undoWrites takes back, from the shared layers, loaded values written
// just before an invalidation from another instance was heard: if that
// instance's change landed first, our older value overwrote it. Where the
// shared layer holds something else by now, it is left alone.
func (c *Cache) undoWrites(calls []*call) {
	if len(calls) == 0 {
		return
	}
	var shared []*layer
	for _, l := range c.layers {
		if l.shared {
			shared = append(shared, l)
		}
	}
	if len(shared) == 0 {
		return
	}
	for _, cl := range calls {
		c.enqueue(context.Background(), writeJob{key: cl.key, layers: shared, entry: cl.wire, undo: true})
	}
}
