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
	once sync.Once
}

type writeJob struct {
	call   *call // the load whose value this is; nil for a backfill
	key    string
	layers []*layer
	entry  *driver.Entry
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
// full.
func (w *writeBack) enqueue(job writeJob) bool {
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
	w.once.Do(func() { close(w.jobs) })
	w.wg.Wait()
}

// writeGuarded writes e to layers unless the load it came from was
// invalidated, and deletes it again if the invalidation raced the write:
// whichever of the two lands last, the invalidation wins.
func (c *Cache) writeGuarded(ctx context.Context, cl *call, key string, layers []*layer, e *driver.Entry) error {
	var errs []error
	for _, l := range layers {
		if cl != nil && cl.invalidated.Load() {
			return nil
		}
		if err := l.set(ctx, key, e); err != nil {
			errs = append(errs, err)
			continue
		}
		if cl != nil && cl.invalidated.Load() {
			_ = l.del(ctx, []string{key})
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
	err := c.writeGuarded(context.Background(), job.call, job.key, job.layers, job.entry)
	if job.call != nil {
		c.flights.release(job.call)
	}
	if err != nil {
		c.logger.Debug("layercache: background write failed", "key", job.key, "err", err)
	}
}
