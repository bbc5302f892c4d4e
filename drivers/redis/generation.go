package redis

import (
	"context"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// generationKey is where name's generation lives. It is outside the layer's
// prefix on purpose: Clear and prefix scans of the layer's keys must never
// reset a generation, or instances would disagree on a namespace's keys.
func (l *Layer) generationKey(name string) string { return "#generation:" + l.prefix + name }

// Generation returns name's generation, 0 when it was never moved.
func (l *Layer) Generation(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	s, err := l.client.Get(ctx, l.generationKey(name)).Result()
	if err == goredis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, opError(ctx, "generation", err)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, opError(ctx, "generation", err)
	}
	return n, nil
}

// NextGeneration moves name's generation on by one (INCR) and returns it.
func (l *Layer) NextGeneration(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	n, err := l.client.Incr(ctx, l.generationKey(name)).Result()
	if err != nil {
		return 0, opError(ctx, "generation", err)
	}
	return uint64(n), nil
}

var _ driver.Generations = (*Layer)(nil)
