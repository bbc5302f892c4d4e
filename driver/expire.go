package driver

import "context"

// Expirer is implemented by layers that can make entries stale in place:
// soft expiry. Each matching entry is kept, but its [Entry.StaleAt] moves
// to now (it stays if it was already earlier; an entry that was never to
// go stale, StaleAt 0, gets now), and nothing else about it changes: not
// its ExpiresAt (an entry without one gets none), value, tags or the time
// the layer itself will keep it. The cache then still has a value to serve
// under stale-while-revalidate or stale-if-error while one load refreshes
// it, which is how a hot key or tag is refreshed without a stampede on the
// origin.
//
// Without it the cache removes the entries from that layer instead
// ([Layer.Delete], [TagInvalidator], [PrefixInvalidator]): as safe, but the
// layer has nothing left to serve while the load runs.
//
// An entry is rewritten only if it is unchanged since it was read: one
// written while the call runs is left as written, fresh. In-process layers
// replace the stored *Entry with a modified copy ([Entry.StaleCopy]); they
// never modify an entry they were given. Missing, expired and unreadable
// entries are skipped without error.
type Expirer interface {
	Layer
	// Expire makes the entries of keys stale now.
	Expire(ctx context.Context, keys ...string) error
	// ExpireTags makes stale now every entry that carries at least one of
	// tags.
	ExpireTags(ctx context.Context, tags ...string) error
	// ExpirePrefix makes stale now every entry whose key starts with
	// prefix, the key as the cache sees it (see [PrefixInvalidator]).
	ExpirePrefix(ctx context.Context, prefix string) error
}

// StaleCopy returns e as soft expiry at now (Unix nanoseconds) leaves it: a
// copy whose StaleAt is now, and true; or e itself and false when it is
// already stale at now and there is nothing to change. The copy shares
// Value, Payload and Tags with e, which is safe because neither may be
// modified.
func (e *Entry) StaleCopy(now int64) (*Entry, bool) {
	if e.StaleAt != 0 && e.StaleAt <= now {
		return e, false
	}
	c := *e
	c.StaleAt = now
	return &c, true
}
