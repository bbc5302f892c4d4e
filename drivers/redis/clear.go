package redis

import (
	"context"
	"errors"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// scanCount is the COUNT hint of each SCAN step: keys examined per round
// trip, small enough that no step blocks Redis for long.
const scanCount = 1000

// errNoPrefix is returned by Clear on a layer without a prefix.
var errNoPrefix = errors.New("layercache/redis: clear: refusing to clear a layer without a prefix; it would delete every key in the database")

// Clear deletes every key that starts with Options.Prefix, with SCAN MATCH
// and UNLINK in batches, so Redis is never blocked for long. In Cluster mode
// every master is scanned. Keys written while Clear runs may survive it.
// A layer without a prefix refuses: it shares its database with whatever
// else is in it.
func (l *Layer) Clear(ctx context.Context) error {
	if l.prefix == "" {
		return errNoPrefix
	}
	pattern := globEscape(l.prefix) + "*"
	var err error
	if l.cluster != nil {
		err = l.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return clearOn(ctx, c, pattern, true)
		})
	} else {
		err = clearOn(ctx, l.client, pattern, false)
	}
	if err != nil {
		return opError(ctx, "clear", err)
	}
	return nil
}

// clearOn deletes the keys matching pattern on one server.
func clearOn(ctx context.Context, c goredis.Cmdable, pattern string, bySlot bool) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, scanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := unlink(ctx, c, keys, bySlot); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// globEscape quotes the characters that SCAN MATCH patterns treat specially.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var _ driver.Clearer = (*Layer)(nil)
