package layercache

import "time"

// Stats is a snapshot of a cache's counters since it was created.
type Stats struct {
	Layers []LayerStats // in lookup order

	Loads        uint64 // loader calls
	LoadErrors   uint64 // loader calls that failed (ErrNotFound aside)
	NotFound     uint64 // loader calls that returned ErrNotFound
	Deduplicated uint64 // callers that waited for another caller's load
	StaleServed  uint64 // stale values served (while revalidating or on error)

	WriteBackDropped uint64 // background writes dropped because the queue was full

	BusPublished uint64 // messages sent to other instances
	BusReceived  uint64 // messages from other instances applied
	BusErrors    uint64 // messages that could not be sent or were malformed

	// JournalPending is how many failed invalidations wait to be
	// replayed on a layer or the bus; JournalReplayed how many were;
	// JournalLost how many could not be kept (journal full, or pending at
	// Close).
	JournalPending  int
	JournalReplayed uint64
	JournalLost     uint64
}

// LayerStats are one layer's counters.
type LayerStats struct {
	Name    string
	Hits    uint64
	Misses  uint64
	Errors  uint64 // failed operations, timeouts and undecodable values
	Skipped uint64 // operations skipped while the breaker was open

	// MeanLatency is the mean duration of the layer's operations. It is
	// measured for layers outside the process only; zero for the others.
	MeanLatency time.Duration

	Breaker       BreakerState // always closed for in-process layers
	BreakerOpened uint64       // how many times the breaker opened
}

// Stats returns a snapshot of the cache's counters. It is safe to call at
// any time, also after Close.
func (c *Cache) Stats() Stats {
	s := Stats{
		Loads:            c.loads.load(),
		LoadErrors:       c.loadErrors.load(),
		NotFound:         c.notFound.load(),
		Deduplicated:     c.deduped.load(),
		StaleServed:      c.staleServed.load(),
		WriteBackDropped: c.writeBackDropped.Load(),
		BusPublished:     c.busOut.Load(),
		BusReceived:      c.busIn.Load(),
		BusErrors:        c.busErrors.Load(),
		JournalPending:   int(c.journal.pending.Load()),
		JournalReplayed:  c.journal.replayed.Load(),
		JournalLost:      c.journal.lost.Load(),
	}
	for _, l := range c.layers {
		ls := LayerStats{
			Name:    l.name,
			Hits:    l.hits.load(),
			Misses:  l.misses.load(),
			Errors:  l.errors.Load(),
			Skipped: l.skipped.Load(),
		}
		if n := l.ops.Load(); n > 0 {
			ls.MeanLatency = time.Duration(l.opNanos.Load() / n)
		}
		if l.breaker != nil {
			ls.Breaker, ls.BreakerOpened = l.breaker.snapshot()
		}
		s.Layers = append(s.Layers, ls)
	}
	return s
}
