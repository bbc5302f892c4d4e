package redis

import (
	"context"
	"errors"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// A prefix spanning many keys is handled as a long run of short commands,
// each far below the milliseconds that other clients of Redis would feel.
// Measured on a loaded two-core host, a SCAN step costs Redis about 1µs
// per key examined and an UNLINK about 1µs per key, so steps of 250 keys
// take a few hundred microseconds, far under the 10ms above which Redis's
// slow log reports a command by default.
const (
	// prefixScanCount is the COUNT hint of each SCAN step.
	prefixScanCount = 250
	// prefixBatch bounds the keys of one UNLINK.
	prefixBatch = 250
)

// errEmptyPrefix is returned for the empty prefix on a layer without a
// prefix of its own: it would match every key in the database.
var errEmptyPrefix = errors.New("layercache/redis: refusing the empty prefix on a layer without Options.Prefix; it would match every key in the database")

// InvalidatePrefix deletes every entry whose key starts with prefix, with
// SCAN MATCH (250 keys examined per step) and UNLINKs of at most 250 keys,
// so no command holds Redis for long however many keys match: the deletes
// of each page travel in the round trip that fetches the next one. In
// Cluster mode every master is scanned, concurrently, and the deletes are
// split by hash slot, as a Cluster requires: keys without a common hash
// tag cost an UNLINK each, pipelined. The empty prefix is [Layer.Clear].
//
// The cost is in proportion to the size of the database, not of the
// prefix: SCAN walks every key. For a group of keys invalidated often,
// a tag, or a namespace with generations in the cache, costs less.
//
// The tag indexes are left as they are: members whose entries are gone
// cost an UNLINK of an absent key when their tag is invalidated, and are
// pruned as their recorded expiry passes (see [Layer.InvalidateTags]).
// Removing them here would mean reading every entry for its tags.
//
// Entries written while it runs may survive it. Like InvalidateTags it is
// bounded by ctx only, not by Options.Timeout.
func (l *Layer) InvalidatePrefix(ctx context.Context, prefix string) error {
	if prefix == "" {
		if l.prefix == "" {
			return errEmptyPrefix
		}
		return l.Clear(ctx)
	}
	err := l.eachNode(ctx, func(ctx context.Context, c goredis.Cmdable) error {
		return l.unlinkPrefix(ctx, c, prefix)
	})
	if err != nil {
		return opError(ctx, "invalidate prefix", err)
	}
	return nil
}

// eachNode calls fn with the client of every server holding keys: each
// master, concurrently, in Cluster mode, else the layer's client.
func (l *Layer) eachNode(ctx context.Context, fn func(ctx context.Context, c goredis.Cmdable) error) error {
	if l.cluster != nil {
		return l.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return fn(ctx, c)
		})
	}
	return fn(ctx, l.client)
}

// unlinkPrefix deletes the layer's keys starting with prefix on the server
// of c. Each round trip carries the UNLINKs of the previous page and the
// SCAN of the next.
func (l *Layer) unlinkPrefix(ctx context.Context, c goredis.Cmdable, prefix string) error {
	pattern := globEscape(l.prefix+prefix) + "*"
	var (
		cursor  uint64
		pending []string
	)
	for {
		pipe := c.Pipeline()
		l.queueUnlinkFull(ctx, pipe, pending)
		scan := pipe.Scan(ctx, cursor, pattern, prefixScanCount)
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		keys, next := scan.Val()
		pending = l.entryKeys(keys)
		if next == 0 {
			break
		}
		cursor = next
	}
	if len(pending) == 0 {
		return nil
	}
	pipe := c.Pipeline()
	l.queueUnlinkFull(ctx, pipe, pending)
	_, err := pipe.Exec(ctx)
	return err
}

// entryKeys drops from keys, full Redis keys that a scan found, those of
// the layer's tag indexes: a prefix starting with NUL could match them, and
// an entry whose index is gone would survive its tag's invalidation. It
// filters keys in place.
func (l *Layer) entryKeys(keys []string) []string {
	out := keys[:0]
	for _, k := range keys {
		if !strings.HasPrefix(k[len(l.prefix):], tagInfix) {
			out = append(out, k)
		}
	}
	return out
}

// queueUnlinkFull puts UNLINKs of full Redis keys on pipe, at most
// prefixBatch keys a command and, in a Cluster, one slot a command.
func (l *Layer) queueUnlinkFull(ctx context.Context, pipe goredis.Pipeliner, keys []string) {
	for off := 0; off < len(keys); off += prefixBatch {
		for _, b := range batches(keys[off:min(off+prefixBatch, len(keys))], l.cluster != nil) {
			pipe.Unlink(ctx, b.keys...)
		}
	}
}

var _ driver.PrefixInvalidator = (*Layer)(nil)
