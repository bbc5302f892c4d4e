package gqlcache_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph"
)

func TestResolve_LoadsOnceAndDoesNotCacheErrors(t *testing.T) {
	ctx := context.Background()
	c := newMemoryCache(t)
	var loads atomic.Int32
	fail := errors.New("database down")
	load := func(context.Context) (int64, error) {
		if loads.Add(1) == 1 {
			return 0, fail
		}
		return 1<<53 + 1, nil
	}
	if _, err := gqlcache.Resolve(ctx, c, "k", load, layercache.WithTTL(time.Minute)); !errors.Is(err, fail) {
		t.Fatalf("err = %v, want the loader's", err)
	}
	for range 2 {
		v, err := gqlcache.Resolve(ctx, c, "k", load, layercache.WithTTL(time.Minute))
		if err != nil || v != 1<<53+1 {
			t.Fatalf("got %d, %v", v, err)
		}
	}
	if n := loads.Load(); n != 2 {
		t.Fatalf("loader ran %d times, want 2", n)
	}
}

func TestResolve_InsideResolverCachesAcrossRequests(t *testing.T) {
	res := testgraph.NewResolver()
	res.Cache = newMemoryCache(t)
	s := newServer(t, res, nil, gqlcache.Options{})
	for range 3 {
		mustContain(t, s.query(`{ rating(id: "abc") }`, nil), `"rating":3.5`)
	}
	wantCalls(t, res, "Query.rating(abc)", 1)
}

// tracedServer starts a recording span per request, as a tracing middleware
// would, and returns what the spans recorded.
func tracedServer(t *testing.T, s *server) *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	inner := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tp.Tracer("test").Start(r.Context(), "request")
		defer span.End()
		inner.ServeHTTP(w, r.WithContext(ctx))
	})
	return rec
}

func TestTracing_SpansNameTheField(t *testing.T) {
	res := testgraph.NewResolver()
	c := newMemoryCache(t)
	res.Cache = c
	s := newServer(t, res, c, testOptions())
	rec := tracedServer(t, s)

	s.query(`{ rating(id: "r1") top: book(id: "2") { title } counter }`, nil)

	var request sdktrace.ReadOnlySpan
	paths := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		switch sp.Name() {
		case "request":
			request = sp
		case "gqlcache.resolve":
			attrs := attribute.NewSet(sp.Attributes()...)
			p, _ := attrs.Value("graphql.field.path")
			coord, _ := attrs.Value("graphql.field.coordinate")
			paths[p.AsString()+" "+coord.AsString()] = sp
		}
	}
	if request == nil {
		t.Fatal("no request span")
	}
	for _, want := range []string{"rating Query.rating", "top Query.book"} {
		sp, ok := paths[want]
		if !ok {
			t.Fatalf("no gqlcache.resolve span for %q; have %v", want, paths)
		}
		if sp.Parent().SpanID() != request.SpanContext().SpanID() {
			t.Fatalf("%s is not a child of the request span", want)
		}
	}
	if len(paths) != 2 {
		t.Fatalf("spans for fields that are not cached: %v", paths)
	}
}

func TestTracing_NoSpanWithoutRecordingParent(t *testing.T) {
	res := testgraph.NewResolver()
	c := newMemoryCache(t)
	res.Cache = c
	s := newServer(t, res, c, testOptions())
	// A span that is not recording (sampled out) in the request's context.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	inner := s.handler
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tp.Tracer("test").Start(r.Context(), "request")
		defer span.End()
		inner.ServeHTTP(w, r.WithContext(ctx))
	})
	mustContain(t, s.query(`{ rating(id: "r1") book(id: "2") { title } }`, nil), `"Cosmos"`)
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded", n)
	}
}
