package redis

import (
	"context"
	"errors"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// Tags are indexed in Redis so that invalidating one never looks at keys
// that do not carry it. Each tag has a sorted set, its index, whose members
// are the cache keys written with the tag, scored with the time (Redis's
// clock, in milliseconds) at which their entry expires:
//
//   - A write of a tagged entry runs SET and then, in the same pipeline,
//     one script per tag that adds the key to the index with its expiry,
//     extends the index's own expiry to cover it, and prunes up to
//     tagPruneMax members whose entries have expired. Pruning by score keeps
//     a tag that is never invalidated from growing without bound as its
//     keys come and go, at a bounded cost per write.
//   - Invalidating a tag renames its index out of the way (so writes that
//     happen meanwhile go to a fresh index and are not lost to it), then
//     reads the renamed index page by page with ZRANGE and UNLINKs its
//     members, tagBatch at a time, and UNLINKs the index last, which Redis
//     frees off its main thread. No step holds Redis for long, whatever the
//     size of the tag.
//
// The index may name keys that no longer exist or no longer carry the tag
// (deleted, expired, or overwritten without it): deleting those is a
// harmless no-op or an early miss. What must not happen is a live tagged
// entry missing from its index. The SET is therefore always applied before
// the index update (in a Cluster, in a round trip of its own, since a
// pipeline's commands to different nodes run in no set order), and an entry
// whose index update fails is removed again.
//
// An index key is Options.Prefix, then "\x00tag:", then the tag in braces.
// The NUL byte keeps it apart from any cache key a program is likely to
// use; the braces make the tag the key's Cluster hash tag, so the renamed
// index stays in the same slot. A tag that is empty or holds a brace
// would upset the hash tag and is replaced by its CRC-32 in the braces,
// followed by ":" and the tag.
const tagInfix = "\x00tag:"

const (
	// tagMembersPerCall bounds the keys one index update adds, so that a
	// large SetMany does not become one long script.
	tagMembersPerCall = 256

	// tagPruneMax bounds the expired members an index update removes.
	tagPruneMax = 64

	// tagBatch is the page of an index read, and the most keys one UNLINK
	// of an invalidation carries. Half the layer's usual batch: the
	// invalidation of a large tag is a long run of such commands, and
	// each must stay far below the few milliseconds that would show as
	// latency for every other client of Redis, also on a busy host.
	tagBatch = 500
)

// tagAddScript adds keys to a tag's index. KEYS[1] is the index; ARGV are
// pairs of (milliseconds the entry lives, cache key). It uses the server's
// clock, so the scores agree with the PX of the SETs whatever the clients'
// clocks say. A member's score is only ever raised: when two writes of one
// key race, the index keeps the later expiry, which is at least the real
// one.
var tagAddScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ` + strconv.Itoa(tagPruneMax) + `)
if #old > 0 then
	redis.call('ZREM', KEYS[1], unpack(old))
end
local longest = 0
for i = 1, #ARGV, 2 do
	local ttl = tonumber(ARGV[i])
	local at = now + ttl
	local cur = redis.call('ZSCORE', KEYS[1], ARGV[i + 1])
	if not cur or tonumber(cur) < at then
		redis.call('ZADD', KEYS[1], at, ARGV[i + 1])
	end
	if ttl > longest then
		longest = ttl
	end
end
local left = redis.call('PTTL', KEYS[1])
if left < longest then
	redis.call('PEXPIRE', KEYS[1], longest)
end
return 0
`)

// tagKey returns the Redis key of tag's index.
func (l *Layer) tagKey(tag string) string {
	if tag != "" && !strings.ContainsAny(tag, "{}") {
		return l.prefix + tagInfix + "{" + tag + "}"
	}
	return l.prefix + tagInfix + "{" + strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(tag))), 16) + "}:" + tag
}

// tagAdds are the index updates of a write: per tag, the keys written and
// how long each lives.
type tagAdds map[string][]any

// add records that key, living ttl, carries tags.
func (a tagAdds) add(key string, ttl time.Duration, tags []string) {
	ms := max(ttl.Milliseconds(), 1)
	for _, t := range tags {
		a[t] = append(a[t], ms, key)
	}
}

// queue puts the index updates on pipe, at most tagMembersPerCall keys a
// script call.
func (l *Layer) queueTags(ctx context.Context, pipe goredis.Pipeliner, adds tagAdds) []tagCall {
	var calls []tagCall
	for tag, args := range adds {
		keys := []string{l.tagKey(tag)}
		for off := 0; off < len(args); off += 2 * tagMembersPerCall {
			a := args[off:min(off+2*tagMembersPerCall, len(args))]
			calls = append(calls, tagCall{keys: keys, args: a, cmd: tagAddScript.EvalSha(ctx, pipe, keys, a...)})
		}
	}
	return calls
}

// tagCall is one queued index update.
type tagCall struct {
	keys []string
	args []any
	cmd  *goredis.Cmd
}

// setTagged writes one tagged record and indexes it.
func (l *Layer) setTagged(ctx context.Context, key string, rec []byte, ttl time.Duration, tags []string) error {
	pipe := l.client.Pipeline()
	pipe.Set(ctx, l.prefix+key, rec, ttl)
	adds := make(tagAdds, len(tags))
	adds.add(key, ttl, tags)
	return l.execTagged(ctx, "set", pipe, adds, []string{l.prefix + key})
}

// execTagged runs pipe, which holds the writes of entries whose (prefixed)
// keys with tags are tagged, followed by the index updates adds. It returns
// the first error of the writes, joined with any error of the index, in
// which case the tagged keys are removed again: an entry missing from its
// index would survive the invalidation of its tag.
func (l *Layer) execTagged(ctx context.Context, op string, pipe goredis.Pipeliner, adds tagAdds, tagged []string) error {
	var writeErr error
	if l.cluster != nil {
		// Nodes run their share of a pipeline concurrently: the writes
		// must be done before the index updates are sent.
		writeErr = firstErr(pipe.Exec(ctx))
		pipe = l.client.Pipeline()
	}
	calls := l.queueTags(ctx, pipe, adds)
	cmds, _ := pipe.Exec(ctx)
	if writeErr == nil {
		isTag := make(map[goredis.Cmder]bool, len(calls))
		for _, c := range calls {
			isTag[c.cmd] = true
		}
		for _, c := range cmds {
			if !isTag[c] && c.Err() != nil {
				writeErr = c.Err()
				break
			}
		}
	}
	var tagErr error
	for _, c := range calls {
		err := c.cmd.Err()
		if isNoScript(err) {
			// The server lost its script cache (restart, SCRIPT FLUSH).
			err = tagAddScript.Eval(ctx, l.client, c.keys, c.args...).Err()
		}
		if err != nil {
			tagErr = err
			break
		}
	}
	if tagErr == nil {
		if writeErr != nil {
			return opError(ctx, op, writeErr)
		}
		return nil
	}
	errs := []error{opError(ctx, op+": index tags", tagErr)}
	if writeErr != nil {
		errs = append(errs, opError(ctx, op, writeErr))
	}
	if err := unlink(context.WithoutCancel(ctx), l.client, tagged, l.cluster != nil); err != nil {
		errs = append(errs, opError(ctx, op+": remove unindexed entries", err))
	}
	return errors.Join(errs...)
}

// firstErr returns the first error of a pipeline's commands.
func firstErr(cmds []goredis.Cmder, err error) error {
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	return err
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT"))
}

// InvalidateTags deletes every entry written with one of tags, and the
// tags' indexes, in batches that never hold Redis for long.
//
// Every write of a tagged entry also adds its key to a sorted set per tag,
// "PREFIX\x00tag:{TAG}", scored with the entry's expiry and kept alive as
// long as its longest-lived entry; members whose entries expired are pruned
// a few at a time by later writes. Invalidation renames that index away,
// then reads it 500 keys at a time and UNLINKs those keys, so that a tag of
// a million keys costs a few thousand short commands, not one long one.
// Entries written with a tag while its invalidation runs may survive it;
// they stay in the tag's new index. Errors of several tags are joined.
//
// The invalidation takes time in proportion to the tag's size (about 2µs a
// key): give it a context whose deadline allows for that.
func (l *Layer) InvalidateTags(ctx context.Context, tags ...string) error {
	var errs []error
	for _, tag := range tags {
		if err := l.invalidateTag(ctx, tag); err != nil {
			errs = append(errs, opError(ctx, "invalidate tag "+strconv.Quote(tag), err))
		}
	}
	return errors.Join(errs...)
}

func (l *Layer) invalidateTag(ctx context.Context, tag string) error {
	index := l.tagKey(tag)
	src := index + ":gone:" + newToken()
	inPlace := l.cluster != nil && keySlot(src) != keySlot(index)
	if inPlace {
		// Only a prefix with an empty hash tag ("{}") gets here: the
		// index cannot be renamed within its slot, so it is consumed
		// where it is, and writes made meanwhile may be lost to it.
		src = index
	} else if err := l.client.Rename(ctx, index, src).Err(); err != nil {
		if goredis.HasErrorPrefix(err, "no such key") {
			return nil // nothing carries the tag
		}
		return err
	}
	// The renamed index is read page by page by rank: nothing writes to it
	// any more, so ranks are stable. Each round trip deletes the keys of
	// the previous page and reads the next one. An index consumed in place
	// has each page removed from it instead, and is read from the start.
	var (
		off     int64
		pending []string
	)
	for {
		pipe := l.client.Pipeline()
		l.queueUnlinkTagged(ctx, pipe, pending)
		if inPlace && len(pending) > 0 {
			pipe.ZRem(ctx, src, toAny(pending)...)
		}
		page := pipe.ZRange(ctx, src, off, off+tagBatch-1)
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		pending = page.Val()
		if len(pending) < tagBatch {
			break
		}
		if !inPlace {
			off += int64(len(pending))
		}
	}
	pipe := l.client.Pipeline()
	l.queueUnlinkTagged(ctx, pipe, pending)
	pipe.Unlink(ctx, src) // freed off Redis's main thread
	_, err := pipe.Exec(ctx)
	return err
}

// queueUnlinkTagged puts UNLINKs of the cache keys on pipe, at most
// tagBatch keys a command and, in a Cluster, one slot a command.
func (l *Layer) queueUnlinkTagged(ctx context.Context, pipe goredis.Pipeliner, keys []string) {
	full := l.fullKeys(keys)
	for off := 0; off < len(full); off += tagBatch {
		for _, b := range batches(full[off:min(off+tagBatch, len(full))], l.cluster != nil) {
			pipe.Unlink(ctx, b.keys...)
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

var _ driver.TagInvalidator = (*Layer)(nil)
