package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// deleteIfHoldsScript deletes KEYS[1] if its record ends with ARGV[1], the
// record's checksum (or, for a signed record, the end of its signature).
// Comparing the checksum rather than the record keeps a large value from
// crossing the network again; the checksum covers the entry's timestamps,
// so two writes of one value still differ.
var deleteIfHoldsScript = goredis.NewScript(`
if redis.call('GETRANGE', KEYS[1], -8, -1) == ARGV[1] then
	return redis.call('UNLINK', KEYS[1])
end
return 0`)

// checkTail is how much of the end of a record DeleteIfHolds compares.
const checkTail = envelope.ChecksumSize

// DeleteIfHolds deletes key if Redis holds exactly the record Set wrote
// for e, and leaves any other value alone: the cache uses it to take back
// a value it wrote just before it heard that another instance changed the
// key.
func (l *Layer) DeleteIfHolds(ctx context.Context, key string, e *driver.Entry) error {
	rec, err := l.record(key, e)
	if err != nil {
		return err
	}
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	sum := rec[len(rec)-checkTail:]
	if err := deleteIfHoldsScript.Run(ctx, l.client, []string{l.prefix + key}, sum).Err(); err != nil && err != goredis.Nil {
		return opError(ctx, "delete", err)
	}
	return nil
}

// Shared marks the layer as used in common by every instance.
func (l *Layer) Shared() {}

var (
	_ driver.Shared             = (*Layer)(nil)
	_ driver.ConditionalDeleter = (*Layer)(nil)
)
