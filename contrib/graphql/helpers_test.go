package gqlcache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph/model"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// server is the test schema behind gqlgen's HTTP handler, with or without
// the extension.
type server struct {
	t       testing.TB
	res     *testgraph.Resolver
	ext     *gqlcache.Extension
	gqlgen  *handler.Server
	handler http.Handler
}

// newServer serves res; with a cache, through an extension made from opts.
func newServer(t testing.TB, res *testgraph.Resolver, c *layercache.Cache, opts gqlcache.Options) *server {
	t.Helper()
	srv := handler.New(testgraph.NewExecutableSchema(testgraph.Config{Resolvers: res}))
	srv.AddTransport(transport.POST{})
	// gqlgen's default prints the stack of a resolver that panics.
	srv.SetRecoverFunc(func(context.Context, any) error { return errors.New("internal system error") })
	s := &server{t: t, res: res, gqlgen: srv}
	if c != nil {
		ext, err := gqlcache.New(c, opts)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		srv.Use(ext)
		s.ext = ext
	}
	// The signed-in user comes from a header, as it would from a session.
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-User"); u != "" {
			r = r.WithContext(testgraph.WithUser(r.Context(), u))
		}
		srv.ServeHTTP(w, r)
	})
	return s
}

// query runs a GraphQL request and returns the response body.
func (s *server) query(q string, vars map[string]any) string {
	return s.queryAs("", q, vars)
}

func (s *server) queryAs(user, q string, vars map[string]any) string {
	s.t.Helper()
	return s.do(context.Background(), user, q, vars)
}

func (s *server) do(ctx context.Context, user, q string, vars map[string]any) string {
	s.t.Helper()
	body, err := json.Marshal(map[string]any{"query": q, "variables": vars})
	if err != nil {
		s.t.Fatal(err)
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("X-User", user)
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	out, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != http.StatusOK {
		s.t.Fatalf("status %d: %s", rec.Code, out)
	}
	return string(out)
}

// mustContain fails unless body has every part.
func mustContain(t testing.TB, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Fatalf("response lacks %s:\n%s", p, body)
		}
	}
}

func wantCalls(t testing.TB, res *testgraph.Resolver, call string, want int) {
	t.Helper()
	if got := res.Calls(call); got != want {
		t.Fatalf("%s ran %d times, want %d", call, got, want)
	}
}

// testOptions caches Query.book and Query.slow by configuration, besides what
// the schema's directives choose, and names books and callers.
func testOptions() gqlcache.Options {
	return gqlcache.Options{
		Fields: map[string]gqlcache.Policy{
			"Query.book": {
				TTL: time.Minute,
				TagsFor: func(_ context.Context, f gqlcache.Field) []string {
					return []string{"book:" + f.Args["id"].(string)}
				},
			},
			"Book.reviews": {
				TagsFor: func(_ context.Context, f gqlcache.Field) []string {
					return []string{"book:" + f.Parent.(*model.Book).ID}
				},
			},
			"Query.slow": {TTL: time.Minute},
		},
		Parents: map[string]func(any) (string, bool){
			"Book": gqlcache.ParentID(func(b model.Book) string { return b.ID }),
		},
		Caller: func(ctx context.Context) (string, bool) { return testgraph.UserFrom(ctx) },
		Logger: slog.New(slog.DiscardHandler),
	}
}

func newMemoryCache(t testing.TB, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	return newCache(t, []driver.Layer{memLayer(t)}, opts...)
}

func memLayer(t testing.TB) driver.Layer {
	t.Helper()
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	return l1
}

func newCache(t testing.TB, layers []driver.Layer, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	c, err := layercache.New(layers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisLayer returns a layer on srv; each call is a separate client, as a
// separate instance of a service would have.
func redisLayer(t testing.TB, srv *redistest.Server) driver.Layer {
	t.Helper()
	l2, err := redis.New(redis.Options{Client: srv.Client(t), Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	return l2
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
