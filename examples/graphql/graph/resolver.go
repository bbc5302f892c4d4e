// Package graph is the bookshop's GraphQL schema (schema.graphqls), the code
// gqlgen generates from it (generated.go, model/models_gen.go; see
// generate.go) and its resolvers, over an in-memory store that is as slow as
// a database.
package graph

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/examples/graphql/graph/model"
)

// Resolver resolves the schema from a Store; Cache holds what Book.rating
// computes. The extension caches the other fields without the resolvers
// knowing.
type Resolver struct {
	Store *Store
	Cache *layercache.Cache
}

// Query returns the Query resolvers.
func (r *Resolver) Query() QueryResolver { return queryResolver{r} }

// Mutation returns the Mutation resolvers.
func (r *Resolver) Mutation() MutationResolver { return mutationResolver{r} }

// Book returns the Book resolvers.
func (r *Resolver) Book() BookResolver { return bookResolver{r} }

type queryResolver struct{ *Resolver }

func (r queryResolver) Book(ctx context.Context, id string) (*model.Book, error) {
	return r.Store.Book(ctx, id)
}

func (r queryResolver) Books(ctx context.Context) ([]*model.Book, error) {
	return r.Store.Books(ctx)
}

func (r queryResolver) Me(ctx context.Context) (*model.User, error) {
	id, ok := UserFrom(ctx)
	if !ok {
		return nil, nil
	}
	return r.Store.User(ctx, id)
}

type mutationResolver struct{ *Resolver }

func (r mutationResolver) AddReview(ctx context.Context, bookID string, stars int, body string) (*model.Review, error) {
	if stars < 1 || stars > 5 {
		return nil, fmt.Errorf("stars must be 1 to 5, not %d", stars)
	}
	rev, err := r.Store.AddReview(ctx, bookID, stars, body)
	if err != nil {
		return nil, err
	}
	// Every cached field tagged with the book drops its entry, here and on
	// every other instance: Query.book, Book.reviews and Book.rating.
	if err := r.Cache.InvalidateTags(ctx, BookTag(bookID)); err != nil {
		return nil, err
	}
	return rev, nil
}

type bookResolver struct{ *Resolver }

func (r bookResolver) Reviews(ctx context.Context, b *model.Book) ([]*model.Review, error) {
	return r.Store.Reviews(ctx, b.ID)
}

// Rating is an aggregate that is slow to compute, cached in the resolver.
func (r bookResolver) Rating(ctx context.Context, b *model.Book) (*float64, error) {
	return gqlcache.Resolve(ctx, r.Cache, "rating:"+b.ID, func(ctx context.Context) (*float64, error) {
		revs, err := r.Store.Reviews(ctx, b.ID)
		if err != nil || len(revs) == 0 {
			return nil, err
		}
		sum := 0
		for _, rev := range revs {
			sum += rev.Stars
		}
		avg := float64(sum) / float64(len(revs))
		return &avg, nil
	}, layercache.WithTTL(10*time.Minute), layercache.WithTags(BookTag(b.ID)))
}

// BookTag is the invalidation tag of everything cached about a book.
func BookTag(id string) string { return "book:" + id }

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

// Store is the bookshop's data, kept in memory; every read or write waits
// Latency, as a round trip to a database would, and is counted.
type Store struct {
	Latency time.Duration
	queries atomic.Int64

	mu      sync.Mutex
	books   []model.Book
	reviews map[string][]model.Review
}

// NewStore returns a store with a few books and reviews.
func NewStore(latency time.Duration) *Store {
	return &Store{
		Latency: latency,
		books: []model.Book{
			{ID: "1", Title: "The Go Programming Language", Author: "Donovan & Kernighan"},
			{ID: "2", Title: "Designing Data-Intensive Applications", Author: "Kleppmann"},
			{ID: "3", Title: "The Art of Computer Programming", Author: "Knuth"},
		},
		reviews: map[string][]model.Review{
			"1": {{Stars: 5, Body: "Clear and deep."}, {Stars: 4, Body: "Great exercises."}},
			"2": {{Stars: 5, Body: "Changed how I design systems."}},
		},
	}
}

// Queries reports how many queries the store has answered.
func (s *Store) Queries() int64 { return s.queries.Load() }

func (s *Store) query(ctx context.Context) error {
	s.queries.Add(1)
	select {
	case <-time.After(s.Latency):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Book returns a book, or nil if there is none with id.
func (s *Store) Book(ctx context.Context, id string) (*model.Book, error) {
	if err := s.query(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.books {
		if b.ID == id {
			return &b, nil
		}
	}
	return nil, nil
}

// Books returns every book.
func (s *Store) Books(ctx context.Context) ([]*model.Book, error) {
	if err := s.query(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*model.Book, len(s.books))
	for i, b := range s.books {
		out[i] = &b
	}
	return out, nil
}

// Reviews returns a book's reviews.
func (s *Store) Reviews(ctx context.Context, bookID string) ([]*model.Review, error) {
	if err := s.query(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*model.Review{}
	for _, r := range s.reviews[bookID] {
		out = append(out, &r)
	}
	return out, nil
}

// AddReview adds a review to a book.
func (s *Store) AddReview(ctx context.Context, bookID string, stars int, body string) (*model.Review, error) {
	if err := s.query(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.books, func(b model.Book) bool { return b.ID == bookID }) {
		return nil, fmt.Errorf("no book %q", bookID)
	}
	r := model.Review{Stars: stars, Body: body}
	s.reviews[bookID] = append(s.reviews[bookID], r)
	return &r, nil
}

// User returns a user.
func (s *Store) User(ctx context.Context, id string) (*model.User, error) {
	if err := s.query(ctx); err != nil {
		return nil, err
	}
	return &model.User{ID: id, Name: "Reader " + id}, nil
}
