package gqlcache_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph/model"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

// slowDelay is how long the slow field's resolver takes: a database query.
const slowDelay = time.Millisecond

const slowQuery = `{ slow(id: "bench") { id total lines } counter }`

// BenchmarkSlowField runs a query with a slow field, cached against
// uncached, in the same run. counter is an uncached field beside it.
func BenchmarkSlowField(b *testing.B) {
	cases := []struct {
		name  string
		cache func(b *testing.B) *layercache.Cache
	}{
		{"uncached", nil},
		{"cached/layers=memory", func(b *testing.B) *layercache.Cache { return newMemoryCache(b) }},
		{"cached/layers=redis", func(b *testing.B) *layercache.Cache {
			return newCache(b, []driver.Layer{redisLayer(b, redistest.Start(b))})
		}},
	}
	for _, tc := range cases {
		for _, parallel := range []bool{false, true} {
			name := tc.name
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				res := testgraph.NewResolver()
				res.SlowDelay = slowDelay
				var c *layercache.Cache
				if tc.cache != nil {
					c = tc.cache(b)
				}
				s := newServer(b, res, c, benchOptions())
				want := s.query(slowQuery, nil)
				if !strings.Contains(want, `"total":35`) {
					b.Fatalf("unexpected response %s", want)
				}
				runQuery(b, s, slowQuery, parallel)
				if c != nil && res.Calls("Query.slow(bench)") != 1 {
					b.Fatalf("the slow resolver ran %d times", res.Calls("Query.slow(bench)"))
				}
			})
		}
	}
}

// wideQuery resolves about sixty fields, none of them cached.
const wideQuery = `{ counter books { id title genre price sold labels publishedAt author { id name } reviews { stars body } } }`

// BenchmarkNothingCached measures what the extension costs on a query none of
// whose fields it caches, against the same server without it and with a
// field middleware that does nothing (gqlgen's own cost of any field
// interceptor).
func BenchmarkNothingCached(b *testing.B) {
	for _, variant := range []string{"without_extension", "noop_field_middleware", "with_extension"} {
		for _, parallel := range []bool{false, true} {
			name := variant
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				res := testgraph.NewResolver()
				opts := benchOptions()
				opts.Directive = "-" // books, reviews and authors would be cached by theirs
				var s *server
				switch variant {
				case "with_extension":
					s = newServer(b, res, newMemoryCache(b), opts)
				case "noop_field_middleware":
					s = newServer(b, res, nil, opts)
					s.gqlgen.AroundFields(func(ctx context.Context, next graphql.Resolver) (any, error) {
						return next(ctx)
					})
				default:
					s = newServer(b, res, nil, opts)
				}
				runQuery(b, s, wideQuery, parallel)
			})
		}
	}
}

func benchOptions() gqlcache.Options {
	return gqlcache.Options{
		Fields: map[string]gqlcache.Policy{"Query.slow": {TTL: time.Hour}},
		Parents: map[string]func(any) (string, bool){
			"Book": func(any) (string, bool) { return "", false },
		},
		Caller: func(context.Context) (string, bool) { return "", false },
		Logger: slog.New(slog.DiscardHandler),
	}
}

func runQuery(b *testing.B, s *server, q string, parallel bool) {
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			s.do(context.Background(), "", q, nil)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.do(context.Background(), "", q, nil)
		}
	})
}

// fieldContext is the context gqlgen gives a field's middleware.
func fieldContext(object, field string, args map[string]any) context.Context {
	ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{
		Object: object,
		Field:  graphql.CollectedField{Field: &ast.Field{Name: field, Alias: field}},
		Args:   args,
	})
}

// BenchmarkInterceptField measures the extension's own work per field, with
// gqlgen's request handling out of the way: on a field it does not cache
// (against calling the resolver directly), and on a hit of a cached field
// (against a raw layercache.Get hit of a fixed key, which it adds the key's
// construction to).
func BenchmarkInterceptField(b *testing.B) {
	c := newMemoryCache(b)
	opts := benchOptions()
	opts.Fields["Query.book"] = gqlcache.Policy{TTL: time.Hour}
	ext, err := gqlcache.New(c, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := ext.Validate(testgraph.NewExecutableSchema(testgraph.Config{Resolvers: testgraph.NewResolver()})); err != nil {
		b.Fatal(err)
	}
	book := &model.Book{ID: "1", Title: "Dune", Genre: model.GenreFiction}
	next := func(context.Context) (any, error) { return book, nil }

	uncached := fieldContext("Book", "title", nil)
	b.Run("field=uncached/baseline=resolver", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := next(uncached); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("field=uncached/extension", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ext.InterceptField(uncached, next); err != nil {
				b.Fatal(err)
			}
		}
	})

	cached := fieldContext("Query", "book", map[string]any{"id": "1"})
	if _, err := ext.InterceptField(cached, next); err != nil {
		b.Fatal(err)
	}
	b.Run("field=cached_hit/baseline=layercache.Get", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		load := func(context.Context) (*model.Book, error) { return book, nil }
		for b.Loop() {
			if _, err := layercache.Get(ctx, c, "raw:book:1", load, layercache.WithTTL(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("field=cached_hit/extension", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := ext.InterceptField(cached, func(context.Context) (any, error) {
				b.Fatal("resolver ran on a hit")
				return nil, nil
			})
			if err != nil || v != book {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("field=cached_hit/extension/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ext.InterceptField(cached, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
