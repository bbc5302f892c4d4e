package gqlcache

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/layercache/layercache"
)

// ScopeName is the instrumentation scope of the spans this package starts.
const ScopeName = "github.com/layercache/layercache/contrib/graphql"

// startSpan starts a span naming the field being resolved, under the span in
// ctx and with its tracer provider, so that the cache's own spans (from
// package github.com/layercache/layercache/otel) say which field they served.
// Without a recording span in ctx it does nothing and costs a context lookup.
func startSpan(ctx context.Context, fc *graphql.FieldContext) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if fc == nil || !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(ScopeName).Start(ctx, "gqlcache.resolve",
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("graphql.field.path", fc.Path().String()),
			attribute.String("graphql.field.coordinate", fc.Object+"."+fc.Field.Name),
		))
}

func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && !errors.Is(err, layercache.ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
