// Package testgraph is a small gqlgen schema with resolvers that count their
// calls, for the gqlcache tests and benchmarks. generated.go and
// model/models_gen.go are generated from schema.graphqls (see generate.go).
package testgraph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph/model"
)

// Resolver resolves the test schema from data kept in memory and counts
// every resolver call by field and argument ("Query.book(1)"). It is safe
// for concurrent use.
type Resolver struct {
	mu      sync.Mutex
	calls   map[string]int
	books   map[string]model.Book
	authors map[string]model.Author

	// SlowDelay is how long Query.slow takes.
	SlowDelay time.Duration
	// SlowGate, when set, holds every Query.slow call until it is closed.
	SlowGate chan struct{}

	// Cache, when set, is what Query.rating caches its value in, through
	// gqlcache.Resolve.
	Cache *layercache.Cache

	flakyFailures atomic.Int32
	counter       atomic.Int64
	vaults        atomic.Int64
}

// NewResolver returns a resolver over three books by three authors.
func NewResolver() *Resolver {
	price1, price3 := 9.99, 0.5
	return &Resolver{
		calls: map[string]int{},
		books: map[string]model.Book{
			"1": {
				ID: "1", Title: "Dune", Genre: model.GenreFiction, Price: &price1,
				Sold:        1<<53 + 1, // not exact as a float64
				Labels:      nil,
				PublishedAt: time.Date(1965, 8, 1, 10, 30, 0, 123456789, time.FixedZone("PDT", -7*3600)),
				AuthorID:    "a1",
			},
			"2": {
				ID: "2", Title: "Cosmos", Genre: model.GenreScience, Price: nil,
				Sold:        42,
				Labels:      []string{},
				PublishedAt: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC),
				AuthorID:    "a2",
			},
			"3": {
				ID: "3", Title: "Foundation", Genre: model.GenreFiction, Price: &price3,
				Sold:        -9007199254740993,
				Labels:      []string{"classic", "space"},
				PublishedAt: time.Date(1951, 6, 1, 12, 0, 0, 0, time.FixedZone("", 5*3600+1800)),
				AuthorID:    "a3",
			},
		},
		authors: map[string]model.Author{
			"a1": {ID: "a1", Name: "Frank Herbert"},
			"a2": {ID: "a2", Name: "Carl Sagan"},
			"a3": {ID: "a3", Name: "Isaac Asimov"},
		},
	}
}

// Calls reports how many times the resolver named call ran, such as
// "Query.book(1)", "Book.reviews(2)" (by book) or "Query.me(alice)".
func (r *Resolver) Calls(call string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[call]
}

// TotalCalls reports how many resolver calls there were in all.
func (r *Resolver) TotalCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

// SetTitle changes a book's title, as a mutation would.
func (r *Resolver) SetTitle(id, title string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.books[id]
	b.Title = title
	r.books[id] = b
}

// FailFlaky makes the next n calls of Query.flaky fail.
func (r *Resolver) FailFlaky(n int) { r.flakyFailures.Store(int32(n)) }

func (r *Resolver) record(call string) {
	r.mu.Lock()
	r.calls[call]++
	r.mu.Unlock()
}

// book returns a copy, so that a cached value never changes under a cache.
func (r *Resolver) book(id string) *model.Book {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.books[id]
	if !ok {
		return nil
	}
	return &b
}

func (r *Resolver) sortedBooks() []*model.Book {
	var out []*model.Book
	for _, id := range []string{"1", "2", "3"} {
		out = append(out, r.book(id))
	}
	return out
}

func (r *Resolver) author(id string) *model.Author {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.authors[id]
	if !ok {
		return nil
	}
	return &a
}

// Query returns the Query resolvers.
func (r *Resolver) Query() QueryResolver { return queryResolver{r} }

// Mutation returns the Mutation resolvers.
func (r *Resolver) Mutation() MutationResolver { return mutationResolver{r} }

// Book returns the Book resolvers.
func (r *Resolver) Book() BookResolver { return bookResolver{r} }

type queryResolver struct{ *Resolver }

func (r queryResolver) Book(_ context.Context, id string) (*model.Book, error) {
	r.record("Query.book(" + id + ")")
	return r.book(id), nil
}

func (r queryResolver) Books(_ context.Context, genre *model.Genre, first *int) ([]*model.Book, error) {
	g := ""
	if genre != nil {
		g = string(*genre)
	}
	r.record("Query.books(" + g + ")")
	var out []*model.Book
	for _, b := range r.sortedBooks() {
		if genre != nil && b.Genre != *genre {
			continue
		}
		if first != nil && len(out) == *first {
			break
		}
		out = append(out, b)
	}
	return out, nil
}

func (r queryResolver) Author(_ context.Context, id string) (*model.Author, error) {
	r.record("Query.author(" + id + ")")
	return r.author(id), nil
}

func (r queryResolver) Search(_ context.Context, text string) ([]model.SearchResult, error) {
	r.record("Query.search(" + text + ")")
	text = strings.ToLower(text)
	out := []model.SearchResult{}
	for _, b := range r.sortedBooks() {
		if strings.Contains(strings.ToLower(b.Title), text) {
			out = append(out, b)
		}
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		if a := r.author(id); strings.Contains(strings.ToLower(a.Name), text) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (r queryResolver) Me(ctx context.Context) (*model.User, error) {
	id, ok := UserFrom(ctx)
	r.record("Query.me(" + id + ")")
	if !ok {
		return nil, nil
	}
	return &model.User{ID: id, Name: "User " + id}, nil
}

// ErrFlaky is what Query.flaky fails with after FailFlaky.
var ErrFlaky = errors.New("flaky: temporary failure")

func (r queryResolver) Flaky(_ context.Context, id string) (*string, error) {
	r.record("Query.flaky(" + id + ")")
	if r.flakyFailures.Add(-1) >= 0 {
		return nil, ErrFlaky
	}
	s := "ok-" + id
	return &s, nil
}

func (r queryResolver) Partial(ctx context.Context, id string) ([]*string, error) {
	r.record("Query.partial(" + id + ")")
	graphql.AddError(ctx, fmt.Errorf("partial: the second item of %s is missing", id))
	a := "first-" + id
	return []*string{&a, nil}, nil
}

func (r queryResolver) Vault(_ context.Context, id string) (*model.Vault, error) {
	r.record("Query.vault(" + id + ")")
	return model.NewVault(id, "code-"+id+"-"+fmt.Sprint(r.vaults.Add(1))), nil
}

func (r queryResolver) Slow(ctx context.Context, id string) (*model.Report, error) {
	r.record("Query.slow(" + id + ")")
	if r.SlowGate != nil {
		select {
		case <-r.SlowGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.SlowDelay > 0 {
		time.Sleep(r.SlowDelay)
	}
	return &model.Report{
		ID:    id,
		Total: len(id) * 7,
		Lines: []string{"report " + id, "total " + fmt.Sprint(len(id)*7)},
	}, nil
}

func (r queryResolver) Boom(context.Context) (*string, error) {
	r.record("Query.boom()")
	panic("boom")
}

func (r queryResolver) Rating(ctx context.Context, id string) (float64, error) {
	load := func(context.Context) (float64, error) {
		r.record("Query.rating(" + id + ")")
		return float64(len(id)) + 0.5, nil
	}
	if r.Cache == nil {
		return load(ctx)
	}
	return gqlcache.Resolve(ctx, r.Cache, "rating:"+id, load, layercache.WithTTL(time.Minute))
}

func (r queryResolver) Counter(context.Context) (int, error) {
	r.record("Query.counter()")
	return int(r.counter.Add(1)), nil
}

type mutationResolver struct{ *Resolver }

func (r mutationResolver) SetTitle(_ context.Context, id, title string) (*model.Book, error) {
	r.record("Mutation.setTitle(" + id + ")")
	r.Resolver.SetTitle(id, title)
	return r.book(id), nil
}

type bookResolver struct{ *Resolver }

func (r bookResolver) Author(_ context.Context, b *model.Book) (*model.Author, error) {
	r.record("Book.author(" + b.ID + ")")
	return r.author(b.AuthorID), nil
}

func (r bookResolver) Reviews(_ context.Context, b *model.Book, first *int) ([]*model.Review, error) {
	r.record("Book.reviews(" + b.ID + ")")
	n := 2
	if first != nil {
		n = *first
	}
	var out []*model.Review
	for i := range n {
		out = append(out, &model.Review{
			Stars: (i+len(b.ID))%5 + 1,
			Body:  fmt.Sprintf("review %d of %s", i+1, b.Title),
		})
	}
	return out, nil
}

type userKey struct{}

// WithUser returns a context for the signed-in user id.
func WithUser(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, userKey{}, id)
}

// UserFrom returns the signed-in user of ctx.
func UserFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(userKey{}).(string)
	return id, ok
}
