package redis

import (
	"context"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// InvalidateAllTags removes every entry that carries all of tags. It reads
// the first tag's index page by page and asks the other tags' indexes about
// each page (ZMSCORE, which works across Cluster slots where an
// intersection on the server would not), unlinking the keys found in every
// index; no command grows with the size of a tag. The indexes are left as
// they are: their members for removed keys are pruned like any other. An
// entry written while it runs may survive it.
func (l *Layer) InvalidateAllTags(ctx context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	if len(tags) == 1 {
		return l.InvalidateTags(ctx, tags...)
	}
	first := l.tagKey(tags[0])
	var off int64
	for {
		page, err := l.client.ZRange(ctx, first, off, off+tagBatch-1).Result()
		if err != nil {
			return opError(ctx, "invalidate tags "+quoteAll(tags), err)
		}
		if len(page) == 0 {
			return nil
		}
		pipe := l.client.Pipeline()
		scores := make([]*goredis.FloatSliceCmd, len(tags)-1)
		for i, t := range tags[1:] {
			scores[i] = pipe.ZMScore(ctx, l.tagKey(t), page...)
		}
		if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
			return opError(ctx, "invalidate tags "+quoteAll(tags), err)
		}
		var all []string
		for j, key := range page {
			inEvery := true
			for _, s := range scores {
				if s.Val()[j] == 0 { // not a member: scores are expiry times
					inEvery = false
					break
				}
			}
			if inEvery {
				all = append(all, key)
			}
		}
		if len(all) > 0 {
			pipe := l.client.Pipeline()
			l.queueUnlinkTagged(ctx, pipe, all)
			if _, err := pipe.Exec(ctx); err != nil {
				return opError(ctx, "invalidate tags "+quoteAll(tags), err)
			}
		}
		if len(page) < tagBatch {
			return nil
		}
		off += int64(len(page))
	}
}

func quoteAll(tags []string) string {
	q := make([]string, len(tags))
	for i, t := range tags {
		q[i] = strconv.Quote(t)
	}
	return strings.Join(q, ", ")
}

var _ driver.AllTagsInvalidator = (*Layer)(nil)
