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

// journal keeps the invalidations that failed on a layer outside the process
// (a Delete, InvalidateTags, Clear, or the Set of a key, which must at least
// remove the older value there) and the bus messages that could not be sent,
// until they can be replayed. Without it an invalidation that meets a Redis
// outage is lost, and Redis serves the old value to every instance once it
// is back, until the value's TTL ends.
//
// Every journaled change is a removal, so replaying them in any order gives
// the same result; they are replayed in the order they failed all the same.
// Until a change is replayed, reads of its key or tag skip the layer it
// failed on, so this instance never reads the old value back from it.
type journal struct {
	mu       sync.Mutex
	ops      []*journalOp
	keys     map[string]*journalOp
	tags     map[string]*journalOp
	prefixes map[string]*journalOp
	// cleared has a bit per layer whose Clear is pending: every read skips
	// that layer, and key or tag removals on it need no entry of their own.
	cleared uint64
	limit   int

	pending  atomic.Int64 // len(ops): the read path's only cost while empty
	replayed atomic.Uint64
	lost     atomic.Uint64
	// overflowing is set when a change is lost to a full journal and
	// cleared once the journal has room again.
	overflowing atomic.Bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

type journalKind uint8

const (
	journalKey journalKind = iota
	journalTag
	journalPrefix
	journalClear
)

// journalOp is one pending removal. layers has a bit per layer index still
// to change; publish says the bus message is still to be sent. gen counts
// the failures merged into it, so that a replay that read it before the
// latest one does not settle that one too.
type journalOp struct {
	kind    journalKind
	name    string // the key or the tag; empty for a clear
	layers  uint64
	publish bool
	gen     uint64
}

// maxJournaledLayers is how many layers the journal can tell apart.
const maxJournaledLayers = 64

func newJournal(limit int) *journal {
	return &journal{
		keys:     make(map[string]*journalOp),
		tags:     make(map[string]*journalOp),
		prefixes: make(map[string]*journalOp),
		limit:    limit,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// record journals the removals of m that failed on the layers in failed
// (a bit per layer index) or on the bus (unsent). It reports how many
// removals it could not keep because the journal is full.
func (j *journal) record(m driver.Message, failed uint64, unsent bool) (lost int) {
	if failed == 0 && !unsent {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch m.Op {
	case driver.OpClear:
		// A clear covers every key and tag removal pending on its layers.
		for _, op := range j.ops {
			op.layers &^= failed
		}
		j.cleared |= failed
		if !j.add(journalClear, "", failed, unsent) {
			lost++
		}
		j.compact()
	case driver.OpInvalidateAllTags:
		// Replayed as a removal of the first tag: more than asked,
		// never less.
		if len(m.Tags) > 0 && !j.add(journalTag, m.Tags[0], failed&^j.cleared, unsent) {
			lost++
		}
	case driver.OpInvalidate, driver.OpExpireTags:
		// A soft expiry that failed is replayed as a removal: gone is
		// staler than stale.
		for _, t := range m.Tags {
			if !j.add(journalTag, t, failed&^j.cleared, unsent) {
				lost++
			}
		}
	case driver.OpInvalidatePrefix, driver.OpExpirePrefix:
		for _, p := range m.Keys {
			if !j.add(journalPrefix, p, failed&^j.cleared, unsent) {
				lost++
			}
		}
	default: // OpSet, OpDelete, OpExpire: the key's older value must go
		for _, k := range m.Keys {
			if !j.add(journalKey, k, failed&^j.cleared, unsent) {
				lost++
			}
		}
	}
	j.pending.Store(int64(len(j.ops)))
	j.poke()
	return lost
}

// add merges a removal into the pending one of the same key or tag, or
// appends it, and reports false when the journal is full. j.mu is held.
func (j *journal) add(kind journalKind, name string, layers uint64, publish bool) bool {
	if layers == 0 && !publish {
		return true
	}
	index := j.index(kind)
	if op := index[name]; op != nil && kind != journalClear {
		op.layers |= layers
		op.publish = op.publish || publish
		op.gen++
		return true
	}
	if len(j.ops) >= j.limit {
		return false
	}
	op := &journalOp{kind: kind, name: name, layers: layers, publish: publish}
	j.ops = append(j.ops, op)
	if index != nil {
		index[name] = op
	}
	return true
}

func (j *journal) index(kind journalKind) map[string]*journalOp {
	switch kind {
	case journalKey:
		return j.keys
	case journalTag:
		return j.tags
	case journalPrefix:
		return j.prefixes
	}
	return nil
}

// compact drops the removals that have nothing left to do. j.mu is held.
func (j *journal) compact() {
	j.ops = slices.DeleteFunc(j.ops, func(op *journalOp) bool {
		if op.layers != 0 || op.publish {
			return false
		}
		if index := j.index(op.kind); index != nil && index[op.name] == op {
			delete(index, op.name)
		}
		return true
	})
	var cleared uint64
	for _, op := range j.ops {
		if op.kind == journalClear {
			cleared |= op.layers
		}
	}
	j.cleared = cleared
	j.pending.Store(int64(len(j.ops)))
	if len(j.ops) < j.limit {
		j.overflowing.Store(false)
	}
}

// skips reports whether a read of key from layer i must skip the layer: a
// removal of the key, or a clear, is pending there.
func (j *journal) skips(i int, key string) bool {
	if j.pending.Load() == 0 {
		return false
	}
	bit := uint64(1) << i
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cleared&bit != 0 {
		return true
	}
	if op := j.keys[key]; op != nil && op.layers&bit != 0 {
		return true
	}
	for p, op := range j.prefixes {
		if op.layers&bit != 0 && strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// skipsTags reports whether an entry read from layer i carries a tag whose
// invalidation is pending there.
func (j *journal) skipsTags(i int, tags []string) bool {
	if len(tags) == 0 || j.pending.Load() == 0 {
		return false
	}
	bit := uint64(1) << i
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, t := range tags {
		if op := j.tags[t]; op != nil && op.layers&bit != 0 {
			return true
		}
	}
	return false
}

// poke asks the replayer to try now.
func (j *journal) poke() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// journalBatch is how many keys or tags one replayed command carries.
const journalBatch = 100

// runJournal replays the journal whenever a layer's breaker closes, a
// change is journaled, and every interval while anything is pending, until
// the cache closes.
func (c *Cache) runJournal(interval time.Duration) {
	j := c.journal
	defer close(j.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-j.wake:
		case <-tick.C:
			if j.pending.Load() == 0 {
				continue
			}
		}
		c.replayJournal()
	}
}

// stopJournal ends the replayer, tries the journal once more, and reports
// what is left.
func (c *Cache) stopJournal() {
	close(c.journal.stop)
	<-c.journal.done
	c.replayJournal()
	if n := c.journal.pending.Load(); n > 0 {
		c.journal.lost.Add(uint64(n))
		c.logger.Warn("layercache: closing with invalidations that could not reach a layer or the bus; they are lost", "pending", n)
	}
}

// journalRun is a run of consecutive pending removals of one kind that a
// replay sends together.
type journalRun struct {
	kind  journalKind
	ops   []*journalOp
	gens  []uint64
	names []string
}

// replayJournal applies the pending removals, layer by layer and then on
// the bus, each in the order they were journaled. A layer or the bus that
// fails again keeps the rest for the next try.
func (c *Cache) replayJournal() {
	j := c.journal
	if j.pending.Load() == 0 {
		return
	}
	type snap struct {
		op      *journalOp
		gen     uint64
		layers  uint64
		publish bool
	}
	j.mu.Lock()
	snaps := make([]snap, len(j.ops))
	for i, op := range j.ops {
		snaps[i] = snap{op, op.gen, op.layers, op.publish}
	}
	j.mu.Unlock()

	// runs groups consecutive removals of one kind that have work on layer
	// i (or on the bus, for i < 0).
	runs := func(has func(s snap) bool) []journalRun {
		var out []journalRun
		for _, s := range snaps {
			if !has(s) {
				continue
			}
			if n := len(out); n == 0 || out[n-1].kind != s.op.kind || len(out[n-1].ops) == journalBatch || s.op.kind == journalClear {
				out = append(out, journalRun{kind: s.op.kind})
			}
			r := &out[len(out)-1]
			r.ops, r.gens, r.names = append(r.ops, s.op), append(r.gens, s.gen), append(r.names, s.op.name)
		}
		return out
	}
	ctx := context.Background()
	var settled []func()
	for _, l := range c.layers {
		if l.inProcess || l.index >= maxJournaledLayers {
			continue
		}
		bit := uint64(1) << l.index
		for _, r := range runs(func(s snap) bool { return s.layers&bit != 0 }) {
			var err error
			switch r.kind {
			case journalKey:
				err = l.del(ctx, r.names)
			case journalTag:
				err = l.invalidateTags(ctx, r.names)
			case journalPrefix:
				for _, p := range r.names {
					if err = l.invalidatePrefix(ctx, p); err != nil {
						break
					}
				}
			case journalClear:
				err = l.clear(ctx)
			}
			if err != nil {
				break // the layer is still away: keep the rest in order
			}
			settled = append(settled, r.settle(func(op *journalOp) { op.layers &^= bit }))
		}
	}
	if c.bus != nil {
		for _, r := range runs(func(s snap) bool { return s.publish }) {
			m := driver.Message{Op: driver.OpDelete, Keys: r.names}
			switch r.kind {
			case journalTag:
				m = driver.Message{Op: driver.OpInvalidate, Tags: r.names}
			case journalPrefix:
				m = driver.Message{Op: driver.OpInvalidatePrefix, Keys: r.names}
			case journalClear:
				m = driver.Message{Op: driver.OpClear}
			}
			if c.publish(ctx, m) != nil {
				break
			}
			settled = append(settled, r.settle(func(op *journalOp) { op.publish = false }))
		}
	}
	if len(settled) == 0 {
		return
	}
	j.mu.Lock()
	before := len(j.ops)
	for _, s := range settled {
		s()
	}
	j.compact()
	done := before - len(j.ops)
	j.mu.Unlock()
	if done > 0 {
		j.replayed.Add(uint64(done))
		c.event(ctx, Event{Kind: EventJournalReplayed, Op: "replay"})
	}
}

// settle returns the step that marks a replayed run done, for the ops that
// no failure was merged into since the replay read them. It runs under
// j.mu.
func (r journalRun) settle(mark func(*journalOp)) func() {
	return func() {
		for i, op := range r.ops {
			if op.gen == r.gens[i] {
				mark(op)
			}
		}
	}
}
