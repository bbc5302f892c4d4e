package memory

import (
	"context"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/layercache/layercache/driver"
)

// InvalidatePrefix removes every entry whose key starts with prefix ("" for
// all of them). It scans the keys, as [Layer.InvalidateTags] scans the
// entries: the layer holds at most MaxSize of them, and a prefix index
// would cost every write. Entries written while it runs may survive it.
func (l *Layer) InvalidatePrefix(_ context.Context, prefix string) error {
	if prefix == "" {
		l.cache.InvalidateAll()
		return nil
	}
	for key := range l.cache.Keys() {
		if strings.HasPrefix(key, prefix) {
			l.cache.Invalidate(key)
		}
	}
	return nil
}

// Expire makes the entries of keys stale now (see [driver.Expirer]). Each
// stored entry is replaced by a copy with the new StaleAt, so that callers
// still holding the old one see no change, and it keeps the time the layer
// would have kept it.
func (l *Layer) Expire(_ context.Context, keys ...string) error {
	now := time.Now().UnixNano()
	for _, k := range keys {
		l.expire(k, now, nil)
	}
	return nil
}

// ExpireTags makes every entry carrying one of tags stale now, scanning the
// entries as InvalidateTags does.
func (l *Layer) ExpireTags(_ context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	match := func(e *driver.Entry) bool { return hasAnyTag(e, tags) }
	now := time.Now().UnixNano()
	for key, e := range l.cache.All() {
		if match(e) {
			l.expire(key, now, match)
		}
	}
	return nil
}

// ExpirePrefix makes every entry whose key starts with prefix stale now.
func (l *Layer) ExpirePrefix(_ context.Context, prefix string) error {
	now := time.Now().UnixNano()
	for key := range l.cache.Keys() {
		if strings.HasPrefix(key, prefix) {
			l.expire(key, now, nil)
		}
	}
	return nil
}

// expire replaces the entry under key, if it is not stale yet at now (and
// match accepts it, when given), by its stale copy.
//
// Otter recomputes an entry's lifetime on every write, which would start
// Options.TTL over: the lifetime left before the write is read under the
// same bucket lock and given back to the copy afterwards, if the copy is
// still there. A write that lands in the instant between that check and the
// restore gets the copy's shorter lifetime, which a layer is allowed: it
// may keep an entry for less, never for more.
func (l *Layer) expire(key string, now int64, match func(*driver.Entry) bool) {
	var (
		stale *driver.Entry
		left  time.Duration
	)
	l.cache.ComputeIfPresent(key, func(old *driver.Entry) (*driver.Entry, otter.ComputeOp) {
		if match != nil && !match(old) {
			return old, otter.CancelOp
		}
		c, changed := old.StaleCopy(now)
		if !changed || old.Expired(now) {
			return old, otter.CancelOp
		}
		if l.ttl > 0 {
			if oe, ok := l.cache.GetEntryQuietly(key); ok {
				left = oe.ExpiresAfter()
			}
		}
		stale = c
		return c, otter.WriteOp
	})
	if stale == nil || left <= 0 {
		return
	}
	// GetEntryQuietly, unlike GetIfPresent, does not count as a use of the
	// entry for eviction.
	if cur, ok := l.cache.GetEntryQuietly(key); ok && cur.Value == stale {
		l.cache.SetExpiresAfter(key, left)
	}
}

var (
	_ driver.PrefixInvalidator = (*Layer)(nil)
	_ driver.Expirer           = (*Layer)(nil)
)
