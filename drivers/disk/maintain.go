package disk

import (
	"errors"
	"time"

	"github.com/nutsdb/nutsdb"
)

// maintain is the layer's background task: it forgets expired entries and
// compacts the data files. It returns when the layer is closed.
func (l *Layer) maintain() {
	defer l.done.Done()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.sweep()
			if l.sinceMerge.Load() >= l.maxSize/2 || l.mergeFailed.Load() {
				l.merge()
			}
		case <-l.mergeNow:
			select {
			case <-l.stop: // closing wins over a queued compaction
				return
			default:
				l.merge()
			}
		}
	}
}

// stopMaintenance stops the background task and waits for it, including a
// compaction in progress.
func (l *Layer) stopMaintenance() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.done.Wait()
}

// sweep removes expired entries from the index. Their records stay in the
// files until nutsdb's own expiry (at most a second later, TTLs being
// rounded up) deletes them; Get already treats them as misses.
func (l *Layer) sweep() {
	now := time.Now().UnixNano()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var dead int64
	for it := l.idx.head; it != nil; {
		next := it.next
		if it.deadline <= now {
			dead += it.size
			l.idx.remove(it)
		}
		it = next
	}
	l.sinceMerge.Add(dead)
}

// merge runs nutsdb's merge, which rewrites the live records of every data
// file into new files and removes the old ones. It rewrites all live data,
// so it runs only once dead data may amount to MaxSize/2.
func (l *Layer) merge() {
	if l.broken.Load() != nil {
		return
	}
	// Bytes written from here on land in the files the merge writes to and
	// are not reclaimed by it: they count towards the next one.
	before := l.sinceMerge.Swap(0)
	err := l.run("merge", l.db.Merge)
	switch {
	case err == nil:
		l.merges.Add(1)
		l.mergeFailed.Store(false)
	case errors.Is(err, nutsdb.ErrDontNeedMerge), errors.Is(err, nutsdb.ErrIsMerging):
		// A single data file: nothing to merge yet, and no more dead data
		// than one segment.
		l.mergeFailed.Store(false)
	default:
		l.sinceMerge.Add(before)
		l.mergeFailed.Store(true) // retried on the next tick
		l.log.Warn("layercache/disk: compaction failed", "dir", l.dir, "err", err)
	}
}
