// Command graphql is a small gqlgen server whose resolvers are cached with
// layercache's gqlcache extension. It runs on an in-process cache and needs
// no Redis; give it a configuration file to use another stack.
//
//	go run ./examples/graphql                  # runs a few queries against itself, prints, exits
//	go run ./examples/graphql -serve           # serves http://127.0.0.1:8080/ (a GraphQL playground) until Ctrl-C
//	go run ./examples/graphql -serve -config examples/configs/redis.yaml
//
// The store behind the resolvers waits 20ms per query, like a database;
// the output counts its queries, which is what the cache saves. Sign in by
// sending an X-User header; Query.me is cached per user.
//
//	curl -s localhost:8080/query -H 'Content-Type: application/json' -H 'X-User: ada' \
//	  -d '{"query":"{ me { name } books { title rating reviews { stars } } }"}'
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	_ "github.com/layercache/layercache/drivers/redis" // for -config files that use Redis
	"github.com/layercache/layercache/examples/graphql/graph"
	"github.com/layercache/layercache/examples/graphql/graph/model"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on with -serve")
	config := flag.String("config", "", "layercache YAML configuration (default: one in-process layer)")
	serve := flag.Bool("serve", false, "keep serving until interrupted instead of running the demo queries")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*serve {
		*addr = "127.0.0.1:0"
	}
	if err := run(ctx, os.Stdout, *addr, *config, *serve); err != nil {
		log.Fatal(err)
	}
}

// openCache opens the cache the configuration file describes, or makes one
// in-process layer.
func openCache(path string) (*layercache.Cache, error) {
	if path != "" {
		return layercache.Open(path)
	}
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		return nil, err
	}
	return layercache.New([]driver.Layer{l1}, layercache.WithNamespace("bookshop"))
}

// newHandler builds the GraphQL server with the cache extension.
func newHandler(cache *layercache.Cache, store *graph.Store) (http.Handler, error) {
	ext, err := gqlcache.New(cache, gqlcache.Options{
		// Query.book is cached by configuration; books, me and
		// Book.reviews by their @cacheControl directives.
		Fields: map[string]gqlcache.Policy{
			"Query.book": {
				TTL: 5 * time.Minute,
				TagsFor: func(_ context.Context, f gqlcache.Field) []string {
					return []string{graph.BookTag(f.Args["id"].(string))}
				},
			},
			"Book.reviews": {
				TagsFor: func(_ context.Context, f gqlcache.Field) []string {
					return []string{graph.BookTag(f.Parent.(*model.Book).ID)}
				},
			},
			"Query.books": {Tags: []string{"books"}},
		},
		// Book.reviews is keyed by the book it belongs to.
		Parents: map[string]func(any) (string, bool){
			"Book": gqlcache.ParentID(func(b *model.Book) string { return b.ID }),
		},
		// Query.me is private: keyed by the signed-in user, never shared.
		Caller: graph.UserFrom,
		// Lets an instance use entries other instances stored in a shared
		// layer before it has resolved those fields itself.
		Types: []any{(*model.Book)(nil), []*model.Book(nil), []*model.Review(nil), (*model.User)(nil)},
	})
	if err != nil {
		return nil, err
	}
	srv := handler.New(graph.NewExecutableSchema(graph.Config{
		Resolvers: &graph.Resolver{Store: store, Cache: cache},
	}))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.Use(extension.Introspection{})
	srv.Use(ext)

	mux := http.NewServeMux()
	mux.Handle("/", playground.Handler("bookshop", "/query"))
	mux.Handle("/query", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-User"); u != "" {
			r = r.WithContext(graph.WithUser(r.Context(), u))
		}
		srv.ServeHTTP(w, r)
	}))
	return mux, nil
}

// run serves the bookshop on addr. Without serve it sends the demo queries
// to itself, writes what happened to out and returns; with serve it keeps
// serving until ctx ends.
func run(ctx context.Context, out io.Writer, addr, config string, serve bool) error {
	cache, err := openCache(config)
	if err != nil {
		return err
	}
	defer cache.Close()
	store := graph.NewStore(20 * time.Millisecond)
	h, err := newHandler(cache, store)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdownCtx)
	}()
	url := "http://" + ln.Addr().String()

	if serve {
		fmt.Fprintf(out, "serving the bookshop on %s/ (GraphQL at %s/query)\n", url, url)
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return err
		}
	}
	return demo(ctx, out, url+"/query", store)
}

// demo sends queries that show what is cached, and counts the store's
// queries behind each.
func demo(ctx context.Context, out io.Writer, url string, store *graph.Store) error {
	steps := []struct{ what, user, query string }{
		{"books, cold", "", `{ books { title rating reviews { stars } } }`},
		{"books, warm", "", `{ books { title rating reviews { stars } } }`},
		{"book 1, cold: its reviews and rating are already cached", "", `{ book(id: "1") { title rating reviews { stars } } }`},
		{"me as ada", "ada", `{ me { name } }`},
		{"me as alan: a private field is never shared", "alan", `{ me { name } }`},
		{"me as ada, warm", "ada", `{ me { name } }`},
		{"a review for book 2, which invalidates the tag book:2", "ada", `mutation { addReview(bookId: "2", stars: 3, body: "Dense.") { stars } }`},
		{"books again: only the reviews and rating of book 2 are resolved again", "", `{ books { title rating reviews { stars } } }`},
	}
	for _, s := range steps {
		before := store.Queries()
		start := time.Now()
		body, err := post(ctx, url, s.user, s.query)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "# %s\n%s\n  -> %d store queries, %v\n", s.what, body, store.Queries()-before, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func post(ctx context.Context, url, user, query string) (string, error) {
	payload, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("X-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + string(body))
	}
	return string(body), nil
}
