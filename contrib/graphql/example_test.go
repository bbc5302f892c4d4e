package gqlcache_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph/model"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

// The extension caches Query.book by configuration, and Book.reviews because
// the schema marks it @cacheControl(maxAge: 30); reviews are kept per book.
func ExampleNew() {
	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
	cache, _ := layercache.New([]driver.Layer{l1})
	defer cache.Close()

	ext, err := gqlcache.New(cache, gqlcache.Options{
		Fields: map[string]gqlcache.Policy{
			"Query.book": {TTL: time.Minute, Tags: []string{"books"}},
		},
		Parents: map[string]func(any) (string, bool){
			"Book": gqlcache.ParentID(func(b *model.Book) string { return b.ID }),
		},
		Caller: func(ctx context.Context) (string, bool) { return testgraph.UserFrom(ctx) },
	})
	if err != nil {
		panic(err)
	}
	resolvers := testgraph.NewResolver()
	srv := handler.New(testgraph.NewExecutableSchema(testgraph.Config{Resolvers: resolvers}))
	srv.AddTransport(transport.POST{})
	srv.Use(ext)

	for range 3 {
		req := httptest.NewRequest("POST", "/graphql", bytes.NewBufferString(`{"query":"{ book(id: \"2\") { title reviews { stars } } }"}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		fmt.Println(string(body))
	}
	fmt.Println("Query.book ran", resolvers.Calls("Query.book(2)"), "time(s), Book.reviews", resolvers.Calls("Book.reviews(2)"))
	// Output:
	// {"data":{"book":{"title":"Cosmos","reviews":[{"stars":2},{"stars":3}]}}}
	// {"data":{"book":{"title":"Cosmos","reviews":[{"stars":2},{"stars":3}]}}}
	// {"data":{"book":{"title":"Cosmos","reviews":[{"stars":2},{"stars":3}]}}}
	// Query.book ran 1 time(s), Book.reviews 1
}

func ExampleResolve() {
	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
	cache, _ := layercache.New([]driver.Layer{l1})
	defer cache.Close()

	// In a resolver: func (r *bookResolver) Rating(ctx context.Context, b *model.Book) (float64, error)
	loads := 0
	rating := func(ctx context.Context, bookID string) (float64, error) {
		return gqlcache.Resolve(ctx, cache, "rating:"+bookID, func(ctx context.Context) (float64, error) {
			loads++ // a slow aggregate query
			return 4.5, nil
		}, layercache.WithTTL(time.Minute), layercache.WithTags("book:"+bookID))
	}
	for range 3 {
		v, _ := rating(context.Background(), "42")
		fmt.Println(v)
	}
	fmt.Println("loads:", loads)
	// Output:
	// 4.5
	// 4.5
	// 4.5
	// loads: 1
}

func ExampleExtension_InvalidateFields() {
	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
	cache, _ := layercache.New([]driver.Layer{l1})
	defer cache.Close()
	ext, _ := gqlcache.New(cache, gqlcache.Options{})

	// After a mutation that changes every book, in the mutation's resolver:
	if err := ext.InvalidateFields(context.Background(), "Query.books", "Query.book"); err != nil {
		fmt.Println(err)
	}
	fmt.Println(ext.FieldTag("Query.books"))
	// Output: gql:field:Query.books
}
