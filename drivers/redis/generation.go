package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// generationKey is where name's generation lives. It is outside the layer's
// prefix on purpose: Clear and prefix scans of the layer's keys must never
// reset a generation, or instances would disagree on a namespace's keys.
func (l *Layer) generationKey(name string) string { return "#generation:" + l.prefix + name }

// A generation that does not exist yet (never used, or lost with a Redis
// restart or flush) starts at the current time in milliseconds rather than
// at 0, so that generations keep growing across such a loss: an instance
// that still knows an older one moves past it, never back to it.
var (
	generationScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
	v = ARGV[1]
	redis.call('SET', KEYS[1], v)
end
return v`)
	nextGenerationScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	redis.call('SET', KEYS[1], ARGV[1])
end
return redis.call('INCR', KEYS[1])`)
)

// Generation returns name's generation.
func (l *Layer) Generation(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	s, err := generationScript.Run(ctx, l.client, []string{l.generationKey(name)}, time.Now().UnixMilli()).Text()
	if err != nil {
		return 0, opError(ctx, "generation", err)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, opError(ctx, "generation", err)
	}
	return n, nil
}

// NextGeneration moves name's generation on by one and returns it.
func (l *Layer) NextGeneration(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	n, err := nextGenerationScript.Run(ctx, l.client, []string{l.generationKey(name)}, time.Now().UnixMilli()).Int64()
	if err != nil {
		return 0, opError(ctx, "generation", err)
	}
	return uint64(n), nil
}

var _ driver.Generations = (*Layer)(nil)
