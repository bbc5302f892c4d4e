package memcached

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// Tags. memcached cannot list its keys, so the layer cannot find a tag's
// entries to delete them. It gives each tag an epoch instead: a random
// 64-bit number stored in an item of its own (the tag's key), which
// InvalidateTags deletes. A tagged entry is stored with the epochs its tags
// had when it was written, and is a miss once any of them is gone or
// different. Every failure mode is thus a miss, never a stale value: an
// invalidation that lands between reading the epochs and writing the entry
// leaves the entry with an epoch that no longer exists, and an epoch item
// that memcached evicts takes its tag's entries with it.
//
// The cost falls on tagged entries only: writing one first reads its tags'
// epochs (creating missing ones), and reading one checks them, each one
// more round trip, however many tags. Epoch items do not expire; memcached
// evicts those of tags no longer used.

const (
	// taggedMagic starts the value of a tagged entry: "LT", a format
	// version, then a uvarint count of epochs, the epochs (8 bytes each,
	// in the order of the entry's tags) and the entry's envelope record.
	// Untagged entries are the envelope record alone, which starts "LC".
	taggedMagic = "LT\x01"
	epochSize   = 8
	// tagMark starts a tag's key after the prefix. Cache keys that start
	// with '#' are hashed (see storageKey), so no cache key can reach it.
	tagMark = "#tag#"
	// tagKeyLen is the length of a tag's key after the prefix.
	tagKeyLen = len(tagMark) + hashedLen - 1
)

// epoch is one tag's current epoch.
type epoch [epochSize]byte

// tagKey returns the key of tag's epoch item.
func (l *Layer) tagKey(tag string) string {
	sum := sha256.Sum256([]byte(tag))
	b := make([]byte, 0, len(l.prefix)+tagKeyLen)
	b = append(b, l.prefix...)
	b = append(b, tagMark...)
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

// taggedHeaderLen is the length of the header before the record of an
// entry with n tags.
func taggedHeaderLen(n int) int {
	if n == 0 {
		return 0
	}
	var buf [binary.MaxVarintLen64]byte
	return len(taggedMagic) + binary.PutUvarint(buf[:], uint64(n)) + n*epochSize
}

// wrapTagged returns the stored value of a tagged entry: the header with
// its tags' epochs, then its record.
func wrapTagged(epochs []epoch, rec []byte) []byte {
	b := make([]byte, 0, len(taggedMagic)+binary.MaxVarintLen64+len(epochs)*epochSize+len(rec))
	b = append(b, taggedMagic...)
	b = binary.AppendUvarint(b, uint64(len(epochs)))
	for _, ep := range epochs {
		b = append(b, ep[:]...)
	}
	return append(b, rec...)
}

// unwrap splits a stored value into the epochs it was written with (nil
// for an untagged entry) and its record.
func unwrap(v []byte) (epochs []byte, rec []byte, err error) {
	if len(v) < len(taggedMagic) || string(v[:len(taggedMagic)]) != taggedMagic {
		return nil, v, nil
	}
	rest := v[len(taggedMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k)/epochSize {
		return nil, nil, fmt.Errorf("%w: bad tag epochs header", envelope.ErrCorrupt)
	}
	rest = rest[k:]
	return rest[:n*epochSize], rest[n*epochSize:], nil
}

// decodeItem decodes a stored value and reports the epochs it was written
// with, which the caller must check against the current ones (see
// [Layer.current]). An expired entry is nil, nil.
func decodeItem(key string, v []byte, now int64) (*driver.Entry, []byte, error) {
	epochs, rec, err := unwrap(v)
	if err != nil {
		return nil, nil, fmt.Errorf("layercache/memcached: key %q: %w", key, err)
	}
	e, err := decode(key, rec, now)
	if err != nil || e == nil {
		return nil, nil, err
	}
	if epochs != nil && len(epochs) != len(e.Tags)*epochSize {
		return nil, nil, fmt.Errorf("layercache/memcached: key %q: %w: %d tag epochs for %d tags", key, envelope.ErrCorrupt, len(epochs)/epochSize, len(e.Tags))
	}
	if epochs == nil && len(e.Tags) > 0 {
		// Written without epochs, so no invalidation could reach it.
		return nil, nil, fmt.Errorf("layercache/memcached: key %q: %w: tagged record without tag epochs", key, envelope.ErrCorrupt)
	}
	return e, epochs, nil
}

// fetchEpochs reads the current epochs of tags in one round trip. Absent
// tags are absent from the map.
func (l *Layer) fetchEpochs(tags []string) (map[string]*memcache.Item, []string, error) {
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = l.tagKey(t)
	}
	if len(keys) == 1 {
		// The common case, without GetMulti's goroutine and channel.
		it, err := l.client.Get(keys[0])
		switch {
		case err == nil:
			return map[string]*memcache.Item{keys[0]: it}, keys, nil
		case errors.Is(err, memcache.ErrCacheMiss):
			return map[string]*memcache.Item{}, keys, nil
		}
		return nil, nil, fmt.Errorf("tag epochs: %w", err)
	}
	items, err := l.client.GetMulti(keys)
	if err != nil {
		return nil, nil, fmt.Errorf("tag epochs: %w", err)
	}
	return items, keys, nil
}

// current reports whether epochs, as stored with an entry carrying tags,
// are still the tags' epochs in items (indexed by the tags' keys).
func (l *Layer) current(tags []string, epochs []byte, items map[string]*memcache.Item) bool {
	for i, t := range tags {
		it := items[l.tagKey(t)]
		if it == nil || string(it.Value) != string(epochs[i*epochSize:(i+1)*epochSize]) {
			return false
		}
	}
	return true
}

// writeEpochs returns the current epochs of tags, creating those that do
// not exist, for an entry about to be written.
func (l *Layer) writeEpochs(tags []string) ([]epoch, error) {
	items, keys, err := l.fetchEpochs(tags)
	if err != nil {
		return nil, err
	}
	out := make([]epoch, len(tags))
	for i, k := range keys {
		it := items[k]
		if it != nil && len(it.Value) != epochSize {
			// Not an epoch the layer wrote. Replacing it invalidates the
			// tag, which is always safe; keeping it would block the tag.
			if err := l.client.Delete(k); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				return nil, fmt.Errorf("tag %q: %w", tags[i], err)
			}
			it = nil
		}
		if it == nil {
			if it, err = l.createEpoch(k); err != nil {
				return nil, fmt.Errorf("tag %q: %w", tags[i], err)
			}
			items[k] = it
		}
		copy(out[i][:], it.Value)
	}
	return out, nil
}

// createEpoch stores a new random epoch under key, unless another writer
// got there first, in which case it returns theirs.
func (l *Layer) createEpoch(key string) (*memcache.Item, error) {
	var ep epoch
	binary.LittleEndian.PutUint64(ep[:], rand.Uint64())
	it := &memcache.Item{Key: key, Value: ep[:]}
	err := l.client.Add(it)
	if errors.Is(err, memcache.ErrNotStored) {
		it, err = l.client.Get(key)
	}
	if err != nil {
		return nil, fmt.Errorf("tag epoch: %w", err)
	}
	if len(it.Value) != epochSize {
		return nil, fmt.Errorf("tag epoch: another writer stored %d bytes, not an epoch", len(it.Value))
	}
	return it, nil
}

// InvalidateTags makes every entry carrying one of tags a miss, by
// deleting the tags' epoch items: one command per tag, and none of the
// entries themselves (memcached frees them as they expire or as it needs
// room). Absent tags are not an error. It stops at the first tag that
// fails.
func (l *Layer) InvalidateTags(ctx context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	_, err := call(ctx, l, func() (struct{}, error) {
		for _, t := range tags {
			if err := l.client.Delete(l.tagKey(t)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				return struct{}{}, fmt.Errorf("tag %q: %w", t, err)
			}
		}
		return struct{}{}, nil
	})
	if err != nil {
		return opError(ctx, "invalidate", err)
	}
	return nil
}

var _ driver.TagInvalidator = (*Layer)(nil)
