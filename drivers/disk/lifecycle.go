package disk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nutsdb/nutsdb"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// expireBatch bounds the records one step of a soft expiry reads and
// rewrites while holding the layer's write lock.
const expireBatch = 256

// InvalidatePrefix removes every entry whose key starts with prefix. The
// keys come from the layer's in-memory index, so no stored value is read;
// they are deleted in nutsdb transactions of at most 1000 keys, releasing
// the write lock between them, as [Layer.InvalidateTags] does. The empty
// prefix is [Layer.Clear]. Entries written while it runs may survive it; on
// an error, including the end of ctx, some entries may be gone and others
// not.
func (l *Layer) InvalidatePrefix(ctx context.Context, prefix string) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	if prefix == "" {
		return l.Clear(ctx)
	}
	keys := l.keysWithPrefix(prefix)
	for len(keys) > 0 {
		if err := l.usable(ctx); err != nil {
			return err
		}
		n := min(len(keys), invalidateBatch)
		if err := l.commit(nil, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// keysWithPrefix returns the keys of the index that start with prefix.
func (l *Layer) keysWithPrefix(prefix string) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var keys []string
	for k := range l.idx.items {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

// Expire makes the entries of keys stale now (see [driver.Expirer]). Each
// record is read, given the new StaleAt (and encrypted again in an
// encrypted layer) and written back with the deadline it had, in one
// transaction per 256 keys under the write lock, so no other write comes
// in between. A rewritten entry counts as written now for eviction, which
// removes the entries written longest ago first.
func (l *Layer) Expire(ctx context.Context, keys ...string) error {
	return l.expireEach(ctx, keys, nil)
}

// ExpireTags makes every entry carrying one of tags stale now, finding them
// in the in-memory tag index as [Layer.InvalidateTags] does.
func (l *Layer) ExpireTags(ctx context.Context, tags ...string) error {
	if len(tags) == 0 {
		return l.usable(ctx)
	}
	l.mu.RLock()
	keys := l.idx.tagged(tags)
	l.mu.RUnlock()
	return l.expireEach(ctx, keys, tags)
}

// ExpirePrefix makes every entry whose key starts with prefix stale now.
func (l *Layer) ExpirePrefix(ctx context.Context, prefix string) error {
	return l.expireEach(ctx, l.keysWithPrefix(prefix), nil)
}

// expireEach expires keys in batches. With tags, only entries that still
// carry one of them are expired.
func (l *Layer) expireEach(ctx context.Context, keys, tags []string) error {
	for len(keys) > 0 {
		if err := l.usable(ctx); err != nil {
			return err
		}
		n := min(len(keys), expireBatch)
		if err := l.expireBatch(keys[:n], tags); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return l.usable(ctx)
}

// expireBatch rewrites the live, not yet stale entries of keys.
func (l *Layer) expireBatch(keys, tags []string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	now := time.Now().UnixNano()
	// Holding wmu, the index is read without mu (see Layer.wmu).
	var items []*item
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		it := l.idx.items[k]
		if _, dup := seen[k]; dup || it == nil || it.deadline <= now || (tags != nil && !l.idx.carries(k, tags)) {
			continue
		}
		seen[k] = struct{}{}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil
	}
	vals := make([][]byte, len(items))
	err := l.run("expire", func() error {
		return l.db.View(func(tx *nutsdb.Tx) error {
			discard := false
			for i, it := range items {
				b, err := tx.Get(bucketName, storeKey(it.key))
				switch {
				case err == nil:
					vals[i] = b
				case errors.Is(err, nutsdb.ErrNotFoundKey):
					discard = true // expired: nutsdb queued a deletion
				case isNotFound(err):
				default:
					return err
				}
			}
			if discard {
				return errDiscard
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errDiscard) {
		return l.wrapErr("expire", err)
	}
	var writes []write
	for i, it := range items {
		if vals[i] == nil {
			continue
		}
		w, ok, err := l.staleWrite(it, vals[i], now)
		if err != nil {
			return err
		}
		if ok {
			writes = append(writes, w)
		}
	}
	return l.commitLocked(writes, nil)
}

// staleWrite returns the write that makes the entry stored as v under it
// stale at now, keeping its deadline. ok is false when there is nothing to
// write: the record does not decode (Get reports and removes it), has
// expired, or is stale already.
func (l *Layer) staleWrite(it *item, v []byte, now int64) (w write, ok bool, err error) {
	e, err := l.decode(it.key, v, now)
	if err != nil || e == nil {
		return w, false, nil
	}
	stale, changed := e.StaleCopy(now)
	left := it.deadline - now
	if !changed || left <= 0 {
		return w, false, nil
	}
	val, err := envelope.Marshal(stale, l.env)
	if err == nil && l.seal != nil {
		val, err = l.seal.seal(storeKey(it.key), val)
	}
	if err != nil {
		return w, false, fmt.Errorf("layercache/disk: expire %q: %w", it.key, err)
	}
	size := recordSize(len(keyPrefix)+len(it.key), len(val))
	if size > l.maxRec {
		// Not reachable by a record that fitted before, since only the
		// fixed-size StaleAt changed; refuse rather than lose the entry.
		return w, false, nil
	}
	// As in prepare: whole seconds, rounded up; Get checks the deadline.
	ttl := (left + int64(time.Second) - 1) / int64(time.Second)
	return write{key: it.key, tags: it.tags, val: val, size: size, deadline: it.deadline, ttl: uint32(ttl)}, true, nil
}

var (
	_ driver.PrefixInvalidator = (*Layer)(nil)
	_ driver.Expirer           = (*Layer)(nil)
)
