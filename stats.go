package layercache

import (
	"time"

	"github.com/layercache/layercache/driver"
)

// Stats is a snapshot of a cache's counters since it was created, or since
// the last [Cache.ResetStats]. A namespace view reports the whole cache.
type Stats struct {
	Layers []LayerStats // in lookup order

	Loads        uint64 // loader calls
	LoadErrors   uint64 // loader calls that failed (ErrNotFound aside)
	NotFound     uint64 // loader calls that returned ErrNotFound
	Refreshes    uint64 // loads of a key whose entry was there (stale, or refreshed early)
	Deduplicated uint64 // callers that waited for another caller's load
	StaleServed  uint64 // stale values served (while revalidating or on error)
	NegativeHits uint64 // reads answered by a cached absence (ErrNotFound)
	Backfills    uint64 // entries copied from a lower layer into an upper one

	Sets                uint64 // Set calls
	DeletedKeys         uint64 // keys given to Delete
	InvalidatedTags     uint64 // tags given to InvalidateTags
	PrefixInvalidations uint64 // InvalidatePrefix calls
	Clears              uint64 // Clear calls on the cache itself
	NamespaceRotations  uint64 // Rotate calls, and Clear calls on views
	WriteBackDropped    uint64 // background writes dropped because the queue was full
	BusPublished        uint64 // messages sent to other instances
	BusReceived         uint64 // messages from other instances applied
	BusErrors           uint64 // messages that could not be sent, and those received but dropped (driver.DropCounter)
	JournalReplayed     uint64 // failed invalidations replayed
	JournalLost         uint64 // failed invalidations not kept (journal full, or pending at Close)
	JournalPending      int    // failed invalidations waiting to be replayed (not reset)

	// Since is when counting began: the cache's creation, or the last
	// ResetStats.
	Since time.Time
}

// LayerStats are one layer's counters.
type LayerStats struct {
	Name    string
	Hits    uint64
	Misses  uint64
	Errors  uint64 // failed operations, timeouts and undecodable values
	Skipped uint64 // operations skipped while the breaker was open

	// MeanLatency and the percentiles are those of the layer's operations,
	// measured for layers outside the process only (zero for the others).
	// Percentiles are read from buckets a quarter of a power of two wide:
	// each is an upper bound within 19% of the true value.
	MeanLatency time.Duration
	P50, P95    time.Duration
	P99         time.Duration

	Breaker       BreakerState // always closed for in-process layers (not reset)
	BreakerOpened uint64       // how many times the breaker opened
}

// statsBase is what ResetStats saw: Stats reports the difference.
type statsBase struct {
	stats  Stats
	layers []layerRaw
}

// layerRaw is what a layer's mean and percentiles are computed from.
type layerRaw struct {
	ops, nanos uint64
	latency    [latencyBuckets]uint64
}

// Stats returns a snapshot of the cache's counters. It is safe to call at
// any time, also after Close.
func (c *Cache) Stats() Stats {
	s, raw := c.rawStats()
	base := c.statsBase.Load()
	for i := range s.Layers {
		r := &raw[i]
		if base != nil {
			s.Layers[i].minus(&base.stats.Layers[i])
			r.ops -= base.layers[i].ops
			r.nanos -= base.layers[i].nanos
			for j := range r.latency {
				r.latency[j] -= base.layers[i].latency[j]
			}
		}
		ls := &s.Layers[i]
		if r.ops > 0 {
			ls.MeanLatency = time.Duration(r.nanos / r.ops)
			ls.P50 = percentile(&r.latency, 0.50)
			ls.P95 = percentile(&r.latency, 0.95)
			ls.P99 = percentile(&r.latency, 0.99)
		}
	}
	if base != nil {
		s.minus(&base.stats)
	}
	return s
}

// ResetStats starts every counter of Stats again from zero (the breaker
// states and the journal's pending count, which are states, stay). It
// counts for the cache and all its views.
func (c *Cache) ResetStats() {
	s, raw := c.rawStats()
	s.Since = time.Now()
	c.statsBase.Store(&statsBase{stats: s, layers: raw})
}

// rawStats reads every counter as it stands.
func (c *Cache) rawStats() (Stats, []layerRaw) {
	s := Stats{
		Loads:               c.loads.load(),
		LoadErrors:          c.loadErrors.load(),
		NotFound:            c.notFound.load(),
		Refreshes:           c.refreshes.Load(),
		Deduplicated:        c.deduped.load(),
		StaleServed:         c.staleServed.load(),
		NegativeHits:        c.negativeHits.load(),
		Backfills:           c.backfills.Load(),
		Sets:                c.sets.Load(),
		DeletedKeys:         c.deletedKeys.Load(),
		InvalidatedTags:     c.invalidatedTags.Load(),
		PrefixInvalidations: c.prefixes.Load(),
		Clears:              c.clears.Load(),
		NamespaceRotations:  c.rotations.Load(),
		WriteBackDropped:    c.writeBackDropped.Load(),
		BusPublished:        c.busOut.Load(),
		BusReceived:         c.busIn.Load(),
		BusErrors:           c.busErrors.Load() + c.busDropped(),
		JournalReplayed:     c.journal.replayed.Load(),
		JournalLost:         c.journal.lost.Load(),
		JournalPending:      int(c.journal.pending.Load()),
		Since:               c.created,
	}
	raw := make([]layerRaw, len(c.layers))
	for i, l := range c.layers {
		ls := LayerStats{
			Name:    l.name,
			Hits:    l.hits.load(),
			Misses:  l.misses.load(),
			Errors:  l.errors.Load(),
			Skipped: l.skipped.Load(),
		}
		if l.breaker != nil {
			ls.Breaker, ls.BreakerOpened = l.breaker.snapshot()
		}
		s.Layers = append(s.Layers, ls)
		raw[i] = layerRaw{ops: l.ops.Load(), nanos: l.opNanos.Load(), latency: l.latency.counts(nil)}
	}
	return s, raw
}

// minus subtracts the counters of b (taken earlier) from s.
func (s *Stats) minus(b *Stats) {
	for _, f := range []struct{ v, b *uint64 }{
		{&s.Loads, &b.Loads}, {&s.LoadErrors, &b.LoadErrors}, {&s.NotFound, &b.NotFound},
		{&s.Refreshes, &b.Refreshes}, {&s.Deduplicated, &b.Deduplicated}, {&s.StaleServed, &b.StaleServed},
		{&s.NegativeHits, &b.NegativeHits}, {&s.Backfills, &b.Backfills}, {&s.Sets, &b.Sets},
		{&s.DeletedKeys, &b.DeletedKeys}, {&s.InvalidatedTags, &b.InvalidatedTags},
		{&s.PrefixInvalidations, &b.PrefixInvalidations}, {&s.Clears, &b.Clears},
		{&s.NamespaceRotations, &b.NamespaceRotations}, {&s.WriteBackDropped, &b.WriteBackDropped},
		{&s.BusPublished, &b.BusPublished}, {&s.BusReceived, &b.BusReceived}, {&s.BusErrors, &b.BusErrors},
		{&s.JournalReplayed, &b.JournalReplayed}, {&s.JournalLost, &b.JournalLost},
	} {
		*f.v -= *f.b
	}
	s.Since = b.Since
}

// minus subtracts the counters of b (taken earlier) from s.
func (s *LayerStats) minus(b *LayerStats) {
	s.Hits -= b.Hits
	s.Misses -= b.Misses
	s.Errors -= b.Errors
	s.Skipped -= b.Skipped
	s.BreakerOpened -= b.BreakerOpened
}

// busDropped is how many received messages the bus dropped, when it says.
func (c *core) busDropped() uint64 {
	if dc, ok := c.bus.(driver.DropCounter); ok {
		return dc.Dropped()
	}
	return 0
}
