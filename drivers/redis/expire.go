package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// expireBatch bounds the records one step of a soft expiry reads and
// rewrites: two round trips, and at most this many values held at once.
const expireBatch = 100

// expireScript replaces KEYS[1] by ARGV[2] if its record still ends with
// ARGV[1], the tail (checksum or signature) of the record read before, and
// keeps the time Redis has left to keep the key. As in DeleteIfHolds, the
// tail stands for the record, so the old value does not cross the network
// again; it covers the entry's timestamps, so a rewrite of the same value
// since differs. Inside a script time stands still, so PTTL then SET PX
// loses nothing (KEEPTTL would need Redis 6).
var expireScript = goredis.NewScript(`
if redis.call('GETRANGE', KEYS[1], -8, -1) ~= ARGV[1] then
	return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
elseif ttl == -1 then
	redis.call('SET', KEYS[1], ARGV[2])
else
	return 0
end
return 1`)

// Expire makes the entries of keys stale now (see [driver.Expirer]): each
// record is read, given the new StaleAt (and signed again when the layer
// signs), and written back by a script that first checks that the key still
// holds the record read, and keeps the key's expiry in Redis. A key written
// in between keeps its new value, fresh. Missing, expired and unreadable
// records are skipped. The keys are handled 100 at a time, each step in two
// round trips bounded by Options.Timeout.
func (l *Layer) Expire(ctx context.Context, keys ...string) error {
	for off := 0; off < len(keys); off += expireBatch {
		bctx, cancel := l.bounded(ctx)
		err := l.expireKeys(bctx, keys[off:min(off+expireBatch, len(keys))], nil)
		cancel()
		if err != nil {
			return opError(bctx, "expire", err)
		}
	}
	return nil
}

// ExpireTags makes every entry carrying one of tags stale now. It reads
// each tag's index with ZSCAN, which reaches every member present
// throughout the call, and expires the members 100 at a time as
// [Layer.Expire] does, skipping those whose entry no longer carries the
// tag. Entries written with the tag while it runs may stay fresh. Like
// InvalidateTags it is bounded by ctx only, not by Options.Timeout.
func (l *Layer) ExpireTags(ctx context.Context, tags ...string) error {
	var errs []error
	for _, tag := range tags {
		if err := l.expireTag(ctx, tag); err != nil {
			errs = append(errs, opError(ctx, "expire tag "+strconv.Quote(tag), err))
		}
	}
	return errors.Join(errs...)
}

func (l *Layer) expireTag(ctx context.Context, tag string) error {
	index := l.tagKey(tag)
	carries := func(e *driver.Entry) bool { return e.HasTag(tag) }
	var cursor uint64
	for {
		// ZSCAN replies with members and scores alternating.
		pairs, next, err := l.client.ZScan(ctx, index, cursor, "", tagBatch).Result()
		if err != nil {
			return err
		}
		members := make([]string, 0, len(pairs)/2)
		for i := 0; i < len(pairs); i += 2 {
			members = append(members, pairs[i])
		}
		for off := 0; off < len(members); off += expireBatch {
			if err := l.expireKeys(ctx, members[off:min(off+expireBatch, len(members))], carries); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// ExpirePrefix makes every entry whose key starts with prefix stale now.
// It scans as [Layer.InvalidatePrefix] does (every master of a Cluster,
// 250 keys examined per step) and expires what it finds 100 keys at a
// time as [Layer.Expire] does. The empty prefix is refused on a layer
// without Options.Prefix. Like InvalidateTags it is bounded by ctx only.
func (l *Layer) ExpirePrefix(ctx context.Context, prefix string) error {
	if prefix == "" && l.prefix == "" {
		return errEmptyPrefix
	}
	pattern := globEscape(l.prefix+prefix) + "*"
	err := l.eachNode(ctx, func(ctx context.Context, c goredis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, prefixScanCount).Result()
			if err != nil {
				return err
			}
			keys = l.entryKeys(keys)
			for i, k := range keys {
				keys[i] = k[len(l.prefix):]
			}
			for off := 0; off < len(keys); off += expireBatch {
				if err := l.expireKeys(ctx, keys[off:min(off+expireBatch, len(keys))], nil); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
	if err != nil {
		return opError(ctx, "expire prefix", err)
	}
	return nil
}

// expireKeys makes stale those entries of keys that match accepts (all when
// it is nil).
func (l *Layer) expireKeys(ctx context.Context, keys []string, match func(*driver.Entry) bool) error {
	rws, err := l.readForExpire(ctx, keys, match, time.Now().UnixNano())
	if err != nil || len(rws) == 0 {
		return err
	}
	return l.rewrite(ctx, rws)
}

// staleRewrite is one record to replace: the tail of the record read, and
// the record of its stale copy.
type staleRewrite struct {
	key  string // full Redis key
	tail []byte
	rec  []byte
}

// readForExpire reads the records of keys in one round trip and returns the
// rewrites that make them stale at now.
func (l *Layer) readForExpire(ctx context.Context, keys []string, match func(*driver.Entry) bool, now int64) ([]staleRewrite, error) {
	pipe := l.client.Pipeline()
	gets := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		gets[i] = pipe.Get(ctx, l.prefix+k)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	var rws []staleRewrite
	for i, k := range keys {
		b, err := gets[i].Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
			continue
		case goredis.HasErrorPrefix(err, "WRONGTYPE"):
			continue // not a record of this layer's
		case err != nil:
			return nil, err
		case len(b) < checkTail:
			continue
		}
		tail := b[len(b)-checkTail:]
		e, err := l.decode(k, b, now)
		if err != nil || e == nil || (match != nil && !match(e)) {
			continue // unreadable, expired, or not the entry sought
		}
		stale, changed := e.StaleCopy(now)
		if !changed {
			continue
		}
		rec, err := l.record(k, stale)
		if err != nil {
			return nil, err
		}
		rws = append(rws, staleRewrite{key: l.prefix + k, tail: tail, rec: rec})
	}
	return rws, nil
}

// rewrite applies the rewrites in one round trip, each only where the key
// still holds the record read.
func (l *Layer) rewrite(ctx context.Context, rws []staleRewrite) error {
	pipe := l.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(rws))
	for i, rw := range rws {
		cmds[i] = expireScript.EvalSha(ctx, pipe, []string{rw.key}, rw.tail, rw.rec)
	}
	_, _ = pipe.Exec(ctx)
	for i, rw := range rws {
		err := cmds[i].Err()
		if isNoScript(err) {
			// The server lost its script cache (restart, SCRIPT FLUSH),
			// or this node of a Cluster never had the script.
			err = expireScript.Run(ctx, l.client, []string{rw.key}, rw.tail, rw.rec).Err()
		}
		if err != nil && !errors.Is(err, goredis.Nil) {
			return err
		}
	}
	return nil
}

var _ driver.Expirer = (*Layer)(nil)
