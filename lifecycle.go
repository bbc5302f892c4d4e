package layercache

import (
	"context"

	"github.com/layercache/layercache/driver"
)

// InvalidateAllTags removes every entry that carries all of tags (where
// [Cache.InvalidateTags] removes those carrying any of them) from every
// layer and instance: the entries of one user in one region, say, tagged
// "user:7" and "region:eu". A layer that cannot intersect tags (memcached)
// removes every entry carrying the first tag instead, as does the replay
// of an intersection that failed during an outage: more than asked, never
// less.
func (c *Cache) InvalidateAllTags(ctx context.Context, tags ...string) error {
	if len(tags) == 0 && !c.closed.Load() {
		return nil
	}
	tags = c.scopedAll(ctx, tags)
	c.invalidatedTags.Add(uint64(len(tags)))
	return c.invalidate(ctx, Operation{Kind: OpInvalidateTags, Tags: tags},
		func() { c.flights.invalidateAllTags(tags) },
		func(ctx context.Context, l *layer) error { return l.invalidateAllTags(ctx, tags) },
		driver.Message{Op: driver.OpInvalidateAllTags, Tags: tags})
}

func (l *layer) invalidateAllTags(ctx context.Context, tags []string) error {
	if ai, ok := l.Layer.(driver.AllTagsInvalidator); ok {
		return l.do(ctx, "invalidate", func(ctx context.Context) error { return ai.InvalidateAllTags(ctx, tags...) })
	}
	return l.invalidateTags(ctx, tags[:1])
}

// InvalidatePrefix removes every entry whose key starts with prefix from
// every layer, then tells the other instances to do the same in their
// private layers. On a namespace view the prefix is within the namespace.
// Layers scan for it in bounded steps (Redis: SCAN with a COUNT and
// UNLINKs of a few hundred keys, on every master), so no single command
// grows with the number of keys; prefer tags or namespaces for groups
// invalidated often, since a scan costs in proportion to the keyspace. A
// layer that cannot scan (memcached) fails with a *LayerError.
func (c *Cache) InvalidatePrefix(ctx context.Context, prefix string) error {
	prefix = c.scopedKey(ctx, prefix)
	c.prefixes.Add(1)
	return c.invalidate(ctx, Operation{Kind: OpInvalidatePrefix, Keys: []string{prefix}},
		func() { c.flights.invalidatePrefix(prefix) },
		func(ctx context.Context, l *layer) error { return l.invalidatePrefix(ctx, prefix) },
		driver.Message{Op: driver.OpInvalidatePrefix, Keys: []string{prefix}})
}

// Expire makes the entries of keys stale instead of removing them, on every
// layer and instance: stale-while-revalidate and stale-if-error keep
// serving them while the next load refreshes them, so a hot key is renewed
// without a stampede on the origin. An entry with no stale window is as
// good as gone. A layer that cannot mark entries stale removes them.
func (c *Cache) Expire(ctx context.Context, keys ...string) error {
	if len(keys) == 0 && !c.closed.Load() {
		return nil
	}
	keys = c.scopedAll(ctx, keys)
	return c.invalidate(ctx, Operation{Kind: OpExpire, Keys: keys},
		func() { c.flights.invalidateKeys(keys) },
		func(ctx context.Context, l *layer) error { return l.expire(ctx, keys) },
		driver.Message{Op: driver.OpExpire, Keys: keys})
}

// ExpireTags makes every entry carrying one of tags stale, as [Cache.Expire]
// does for keys.
func (c *Cache) ExpireTags(ctx context.Context, tags ...string) error {
	if len(tags) == 0 && !c.closed.Load() {
		return nil
	}
	tags = c.scopedAll(ctx, tags)
	return c.invalidate(ctx, Operation{Kind: OpExpire, Tags: tags},
		func() { c.flights.invalidateTags(tags) },
		func(ctx context.Context, l *layer) error { return l.expireTags(ctx, tags) },
		driver.Message{Op: driver.OpExpireTags, Tags: tags})
}

// ExpirePrefix makes every entry whose key starts with prefix stale, as
// [Cache.Expire] does for keys.
func (c *Cache) ExpirePrefix(ctx context.Context, prefix string) error {
	prefix = c.scopedKey(ctx, prefix)
	return c.invalidate(ctx, Operation{Kind: OpExpire, Keys: []string{prefix}},
		func() { c.flights.invalidatePrefix(prefix) },
		func(ctx context.Context, l *layer) error { return l.expirePrefix(ctx, prefix) },
		driver.Message{Op: driver.OpExpirePrefix, Keys: []string{prefix}})
}

func (l *layer) invalidatePrefix(ctx context.Context, prefix string) error {
	pi, ok := l.Layer.(driver.PrefixInvalidator)
	if !ok {
		return &LayerError{Op: "invalidate_prefix", Layer: l.name, Err: errUnsupported}
	}
	return l.do(ctx, "invalidate_prefix", func(ctx context.Context) error { return pi.InvalidatePrefix(ctx, prefix) })
}

// expire, expireTags and expirePrefix fall back to removing the entries
// when the layer cannot mark them stale: gone is staler than stale.
func (l *layer) expire(ctx context.Context, keys []string) error {
	if ex, ok := l.Layer.(driver.Expirer); ok {
		return l.do(ctx, "expire", func(ctx context.Context) error { return ex.Expire(ctx, keys...) })
	}
	return l.del(ctx, keys)
}

func (l *layer) expireTags(ctx context.Context, tags []string) error {
	if ex, ok := l.Layer.(driver.Expirer); ok {
		return l.do(ctx, "expire", func(ctx context.Context) error { return ex.ExpireTags(ctx, tags...) })
	}
	return l.invalidateTags(ctx, tags)
}

func (l *layer) expirePrefix(ctx context.Context, prefix string) error {
	if ex, ok := l.Layer.(driver.Expirer); ok {
		return l.do(ctx, "expire", func(ctx context.Context) error { return ex.ExpirePrefix(ctx, prefix) })
	}
	return l.invalidatePrefix(ctx, prefix)
}

// applyRemote applies another instance's change to this instance's private
// layers and loads in flight.
func (c *Cache) applyRemote(ctx context.Context, m driver.Message) error {
	private := c.privateLayers()
	var errs []error
	each := func(f func(*layer) error) {
		for _, l := range private {
			errs = append(errs, f(l))
		}
	}
	switch m.Op {
	case driver.OpSet, driver.OpDelete:
		c.undoWrites(c.flights.invalidateKeys(m.Keys))
		each(func(l *layer) error { return l.del(ctx, m.Keys) })
	case driver.OpExpire:
		c.undoWrites(c.flights.invalidateKeys(m.Keys))
		each(func(l *layer) error { return l.expire(ctx, m.Keys) })
	case driver.OpInvalidate:
		c.undoWrites(c.flights.invalidateTags(m.Tags))
		each(func(l *layer) error { return l.invalidateTags(ctx, m.Tags) })
	case driver.OpExpireTags:
		c.undoWrites(c.flights.invalidateTags(m.Tags))
		each(func(l *layer) error { return l.expireTags(ctx, m.Tags) })
	case driver.OpInvalidateAllTags:
		if len(m.Tags) == 0 {
			break
		}
		c.undoWrites(c.flights.invalidateAllTags(m.Tags))
		each(func(l *layer) error { return l.invalidateAllTags(ctx, m.Tags) })
	case driver.OpInvalidatePrefix, driver.OpExpirePrefix:
		for _, p := range m.Keys {
			c.undoWrites(c.flights.invalidatePrefix(p))
			if m.Op == driver.OpExpirePrefix {
				each(func(l *layer) error { return l.expirePrefix(ctx, p) })
			} else {
				each(func(l *layer) error { return l.invalidatePrefix(ctx, p) })
			}
		}
	case driver.OpClear:
		c.drop(private)
	default:
		c.busErrors.Add(1)
		c.logger.Warn("layercache: unknown bus operation", "op", m.Op, "origin", m.Origin)
	}
	return joinErrors(errs)
}
