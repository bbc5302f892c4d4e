package gqlcache

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/layercache/layercache"
)

// Resolve is [layercache.Get] for use inside a resolver: it returns the
// value cached under key, running loader once on a miss however many
// resolutions ask at the same time, with the same options and guarantees as
// Get. When ctx carries a recording span, the read gets a span of its own
// named after the field being resolved (graphql.field.path and
// graphql.field.coordinate), under which the cache's spans nest.
//
// Values from in-process layers are shared between callers; do not mutate
// them.
func Resolve[T any](ctx context.Context, c *layercache.Cache, key string, loader func(context.Context) (T, error), opts ...layercache.EntryOption) (T, error) {
	ctx, span := startSpan(ctx, graphql.GetFieldContext(ctx))
	v, err := layercache.Get(ctx, c, key, loader, opts...)
	endSpan(span, err)
	return v, err
}
