package gqlcache_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layercache/layercache"
	gqlcache "github.com/layercache/layercache/contrib/graphql"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph"
	"github.com/layercache/layercache/contrib/graphql/internal/testgraph/model"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

func TestExtension_RepeatedQueryRunsResolverOnce(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	for range 3 {
		body := s.query(`{ book(id: "1") { title sold } }`, nil)
		mustContain(t, body, `"title":"Dune"`, `"sold":9007199254740993`)
	}
	wantCalls(t, res, "Query.book(1)", 1)
}

func TestExtension_DifferentArgumentsAreDifferentEntries(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	mustContain(t, s.query(`{ book(id: "1") { title } }`, nil), `"Dune"`)
	mustContain(t, s.query(`{ book(id: "2") { title } }`, nil), `"Cosmos"`)
	// A variable with the same value is the same entry as the literal.
	mustContain(t, s.query(`query($id: ID!) { book(id: $id) { title } }`, map[string]any{"id": "1"}), `"Dune"`)
	mustContain(t, s.query(`query($id: ID!) { book(id: $id) { title } }`, map[string]any{"id": "2"}), `"Cosmos"`)
	wantCalls(t, res, "Query.book(1)", 1)
	wantCalls(t, res, "Query.book(2)", 1)

	// Defaults count as arguments: first: 10 is the default of books.
	s.query(`{ books(genre: FICTION) { id } }`, nil)
	s.query(`{ books(genre: FICTION, first: 10) { id } }`, nil)
	body := s.query(`{ books(genre: FICTION, first: 1) { id } }`, nil)
	wantCalls(t, res, "Query.books(FICTION)", 2)
	if strings.Count(body, `"id"`) != 1 {
		t.Fatalf("first: 1 was served another entry: %s", body)
	}
}

func TestExtension_PrivateFieldIsNeverSharedBetweenCallers(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	for range 2 {
		mustContain(t, s.queryAs("alice", `{ me { id name } }`, nil), `"name":"User alice"`)
		mustContain(t, s.queryAs("bob", `{ me { id name } }`, nil), `"name":"User bob"`)
		mustContain(t, s.queryAs("", `{ me { id name } }`, nil), `"me":null`)
	}
	wantCalls(t, res, "Query.me(alice)", 1)
	wantCalls(t, res, "Query.me(bob)", 1)
	// A caller Caller cannot name is never cached, so never shares either.
	wantCalls(t, res, "Query.me()", 2)
}

func TestExtension_FieldUnderListOfParentsIsKeyedPerParent(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	q := `{ books { id reviews { body } } }`
	first := s.query(q, nil)
	if again := s.query(q, nil); again != first {
		t.Fatalf("second response differs:\n%s\n%s", first, again)
	}
	mustContain(t, first, `"review 1 of Dune"`, `"review 1 of Cosmos"`, `"review 2 of Foundation"`)
	for _, id := range []string{"1", "2", "3"} {
		wantCalls(t, res, "Book.reviews("+id+")", 1)
	}
	// The same book reached another way is the same parent.
	mustContain(t, s.query(`{ book(id: "2") { reviews { body } } }`, nil), `"review 2 of Cosmos"`)
	wantCalls(t, res, "Book.reviews(2)", 1)
	// Books inside a union list too.
	mustContain(t, s.query(`{ search(text: "o") { ... on Book { reviews { body } } } }`, nil), `"review 1 of Foundation"`)
	wantCalls(t, res, "Book.reviews(3)", 1)
	// Other arguments under the same parent are another entry.
	mustContain(t, s.query(`{ book(id: "2") { reviews(first: 3) { body } } }`, nil), `"review 3 of Cosmos"`)
	wantCalls(t, res, "Book.reviews(2)", 2)
}

func TestExtension_TagInvalidationReachesField(t *testing.T) {
	ctx := context.Background()
	res := testgraph.NewResolver()
	c := newMemoryCache(t)
	s := newServer(t, res, c, testOptions())

	q := `{ one: book(id: "1") { title reviews { body } } two: book(id: "2") { title } }`
	mustContain(t, s.query(q, nil), `"title":"Dune"`, `"review 1 of Dune"`)
	res.SetTitle("1", "Dune Messiah")
	mustContain(t, s.query(q, nil), `"title":"Dune"`) // still cached

	if err := c.InvalidateTags(ctx, "book:1"); err != nil {
		t.Fatal(err)
	}
	mustContain(t, s.query(q, nil), `"title":"Dune Messiah"`, `"review 1 of Dune Messiah"`)
	wantCalls(t, res, "Query.book(1)", 2)
	wantCalls(t, res, "Book.reviews(1)", 2)
	wantCalls(t, res, "Query.book(2)", 1)

	// A field's own tag drops all of its entries and nothing else.
	if err := s.ext.InvalidateFields(ctx, "Query.book"); err != nil {
		t.Fatal(err)
	}
	s.query(q, nil)
	wantCalls(t, res, "Query.book(1)", 3)
	wantCalls(t, res, "Query.book(2)", 2)
	wantCalls(t, res, "Book.reviews(1)", 2)
}

func TestExtension_ResolverErrorsAreNotCached(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())
	res.FailFlaky(1)

	mustContain(t, s.query(`{ flaky(id: "x") }`, nil), testgraph.ErrFlaky.Error(), `"flaky":null`)
	mustContain(t, s.query(`{ flaky(id: "x") }`, nil), `"flaky":"ok-x"`)
	mustContain(t, s.query(`{ flaky(id: "x") }`, nil), `"flaky":"ok-x"`)
	wantCalls(t, res, "Query.flaky(x)", 2)
}

func TestExtension_ValueWithReportedErrorsIsNotCached(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	for range 2 {
		mustContain(t, s.query(`{ partial(id: "p") }`, nil), `the second item of p is missing`, `["first-p",null]`)
	}
	wantCalls(t, res, "Query.partial(p)", 2)
}

func TestExtension_ValueThatLosesDataInEncodingIsNotCached(t *testing.T) {
	res := testgraph.NewResolver()
	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := newServer(t, res, newMemoryCache(t), opts)

	// The resolver makes a new code each time: a cached Vault would repeat it.
	a := s.query(`{ vault(id: "v") { code } }`, nil)
	b := s.query(`{ vault(id: "v") { code } }`, nil)
	if a == b {
		t.Fatalf("the second response repeats the first: %s", a)
	}
	wantCalls(t, res, "Query.vault(v)", 2)
	mustContain(t, logs.String(), "Query.vault", "value.code")
	if n := strings.Count(logs.String(), "Query.vault"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestExtension_ResolverPanicIsAnsweredAsWithoutCache(t *testing.T) {
	plain := newServer(t, testgraph.NewResolver(), nil, gqlcache.Options{})
	res := testgraph.NewResolver()
	cached := newServer(t, res, newMemoryCache(t), testOptions())

	want := plain.query(`{ boom }`, nil)
	for range 2 {
		if got := cached.query(`{ boom }`, nil); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	wantCalls(t, res, "Query.boom()", 2)
}

func TestExtension_TypeHintCachesFieldsReturningTheType(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	for range 2 {
		mustContain(t, s.query(`{ author(id: "a2") { name } books { author { name } } }`, nil),
			`"Carl Sagan"`, `"Isaac Asimov"`)
	}
	wantCalls(t, res, "Query.author(a2)", 1)
	wantCalls(t, res, "Book.author(1)", 1)
	wantCalls(t, res, "Book.author(3)", 1)
}

func TestExtension_MutationIsNeverCached(t *testing.T) {
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())

	s.query(`mutation { setTitle(id: "2", title: "Pale Blue Dot") { title } }`, nil)
	mustContain(t, s.query(`mutation { setTitle(id: "2", title: "Contact") { title } }`, nil), `"Contact"`)
	wantCalls(t, res, "Mutation.setTitle(2)", 2)
}

func TestExtension_ConcurrentResolutionsLoadOnce(t *testing.T) {
	res := testgraph.NewResolver()
	res.SlowGate = make(chan struct{})
	c := newMemoryCache(t)
	s := newServer(t, res, c, testOptions())

	const n = 8
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			bodies[i] = s.query(`{ slow(id: "r") { id total lines } }`, nil)
		})
	}
	// Every request but the one running the resolver waits for it.
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Deduplicated < n-1 {
		if time.Now().After(deadline) {
			close(res.SlowGate)
			wg.Wait()
			t.Fatalf("only %d requests waited for the load", c.Stats().Deduplicated)
		}
		time.Sleep(time.Millisecond)
	}
	close(res.SlowGate)
	wg.Wait()

	wantCalls(t, res, "Query.slow(r)", 1)
	for _, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("responses differ:\n%s\n%s", bodies[0], b)
		}
	}
	mustContain(t, bodies[0], `"total":7`)
}

// mixedQuery asks for cached and uncached fields of every shape in the test
// schema: lists, a union, scalars that are easy to corrupt, nulls, nested
// cached fields, aliases and variables. Root fields resolve concurrently, so
// it asks for one order-dependent field (counter) only once.
const mixedQuery = `query($id: ID!, $genre: Genre) {
  counter
  book(id: $id) { id title genre price sold labels publishedAt author { id name } reviews { stars body } }
  missing: book(id: "404") { id }
  books(genre: $genre) { id title labels price sold publishedAt reviews(first: 1) { body } }
  all: books { id labels publishedAt author { name } }
  search(text: "a") { __typename ... on Book { id title sold } ... on Author { id name } }
  author(id: "a1") { name }
  me { name }
  vault(id: "v") { id }
  slow(id: "s") { id total lines }
}`

func TestExtension_MixedQueryReturnsSameJSONAsWithoutCache(t *testing.T) {
	srv := redistest.Start(t)
	shared := newCache(t, []driver.Layer{redisLayer(t, srv)})

	setups := []struct {
		name  string
		cache func(t *testing.T) *layercache.Cache
	}{
		{"memory", func(t *testing.T) *layercache.Cache { return newMemoryCache(t) }},
		{"memory+redis", func(t *testing.T) *layercache.Cache {
			return newCache(t, []driver.Layer{memLayer(t), redisLayer(t, redistest.Start(t))}, layercache.WithStrictWrites())
		}},
		// Every hit is decoded from Redis.
		{"redis", func(t *testing.T) *layercache.Cache { return shared }},
		// Another instance over the same Redis, after the one above.
		{"redis-second-instance", func(t *testing.T) *layercache.Cache {
			return newCache(t, []driver.Layer{memLayer(t), redisLayer(t, srv)})
		}},
	}
	vars := map[string]any{"id": "1", "genre": "FICTION"}
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) {
			plain := newServer(t, testgraph.NewResolver(), nil, gqlcache.Options{})
			res := testgraph.NewResolver()
			cached := newServer(t, res, setup.cache(t), testOptions())
			for i := range 3 {
				want := plain.queryAs("alice", mixedQuery, vars)
				if got := cached.queryAs("alice", mixedQuery, vars); got != want {
					t.Fatalf("run %d differs\n got: %s\nwant: %s", i, got, want)
				}
			}
			if strings.Contains(plain.query(mixedQuery, vars), `"errors"`) {
				t.Fatalf("the query itself fails: %s", plain.query(mixedQuery, vars))
			}
			// The comparison means something only if the cache served.
			wantCalls(t, res, "Query.vault(v)", 3)
			wantCalls(t, res, "Query.counter()", 3)
			if got := res.Calls("Query.search(a)"); got > 1 {
				t.Fatalf("Query.search ran %d times", got)
			}
			if got := res.Calls("Book.reviews(1)"); got > 2 { // book(id: 1) and books ask with other arguments
				t.Fatalf("Book.reviews(1) ran %d times", got)
			}
		})
	}
}

func TestExtension_InstanceLearnsTypesOfSharedEntries(t *testing.T) {
	srv := redistest.Start(t)
	const q = `{ book(id: "3") { title sold labels } search(text: "sagan") { ... on Author { name } } }`

	first := testgraph.NewResolver()
	want := newServer(t, first, newCache(t, []driver.Layer{memLayer(t), redisLayer(t, srv)}, layercache.WithStrictWrites()), testOptions()).query(q, nil)
	mustContain(t, want, `"sold":-9007199254740993`, `"Carl Sagan"`)

	t.Run("from resolving once", func(t *testing.T) {
		res := testgraph.NewResolver()
		s := newServer(t, res, newCache(t, []driver.Layer{memLayer(t), redisLayer(t, srv)}), testOptions())
		for range 3 {
			if got := s.query(q, nil); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
		wantCalls(t, res, "Query.book(3)", 1)
		wantCalls(t, res, "Query.search(sagan)", 1)
	})
	t.Run("from Options.Types", func(t *testing.T) {
		res := testgraph.NewResolver()
		opts := testOptions()
		opts.Types = []any{(*model.Book)(nil), []model.SearchResult(nil), (*model.Author)(nil)}
		s := newServer(t, res, newCache(t, []driver.Layer{memLayer(t), redisLayer(t, srv)}), opts)
		for range 3 {
			if got := s.query(q, nil); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
		wantCalls(t, res, "Query.book(3)", 0)
		wantCalls(t, res, "Query.search(sagan)", 0)
	})
}

func TestExtension_UnionListKeepsElementTypesThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	res := testgraph.NewResolver()
	s := newServer(t, res, newCache(t, []driver.Layer{redisLayer(t, srv)}), testOptions())

	q := `{ search(text: "o") { __typename ... on Book { title publishedAt } ... on Author { name } } }`
	want := newServer(t, testgraph.NewResolver(), nil, gqlcache.Options{}).query(q, nil)
	for range 2 {
		if got := s.query(q, nil); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	wantCalls(t, res, "Query.search(o)", 1)
	mustContain(t, want, `"__typename":"Book"`, `"__typename":"Author"`, `"1951-06-01T12:00:00+05:30"`)
}

func TestExtension_ResolverRunsAgainAfterTTL(t *testing.T) {
	res := testgraph.NewResolver()
	opts := testOptions()
	opts.Fields["Query.book"] = gqlcache.Policy{TTL: 50 * time.Millisecond}
	s := newServer(t, res, newMemoryCache(t), opts)

	s.query(`{ book(id: "2") { title } }`, nil)
	for res.Calls("Query.book(2)") < 2 {
		time.Sleep(20 * time.Millisecond) // until the entry expires; the test times out if it never does
		s.query(`{ book(id: "2") { title } }`, nil)
	}
}

func TestExtension_KeysOfDifferentCallersAndParentsCannotCollide(t *testing.T) {
	// A caller id crafted to look like another key's suffix must not reach
	// that key's entry.
	res := testgraph.NewResolver()
	s := newServer(t, res, newMemoryCache(t), testOptions())
	mustContain(t, s.queryAs(`bob`, `{ me { name } }`, nil), `"User bob"`)
	mustContain(t, s.queryAs(`bob"~"x`, `{ me { name } }`, nil), `"User bob\"~\"x"`)
	wantCalls(t, res, `Query.me(bob"~"x)`, 1)
}

func TestExtension_ServesOneSchema(t *testing.T) {
	ext, err := gqlcache.New(newMemoryCache(t), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	es := testgraph.NewExecutableSchema(testgraph.Config{Resolvers: testgraph.NewResolver()})
	if err := ext.Validate(es); err != nil {
		t.Fatal(err)
	}
	if err := ext.Validate(es); err != nil {
		t.Fatalf("the same schema again: %v", err)
	}
	if err := ext.Validate(mockSchema(t, `type Query { a: Int }`)); err == nil {
		t.Fatal("a second schema was accepted")
	}
}

func TestExtension_EntryThatNoLongerDecodesIsReplaced(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	var logs logBuffer
	opts := testOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	opts.Types = []any{(*model.Book)(nil)}

	// What an older build with another Book struct would have stored.
	type olderEntry struct {
		Type  string          `json:"t"`
		Value json.RawMessage `json:"v"`
	}
	older := newCache(t, []driver.Layer{redisLayer(t, srv)})
	err := layercache.Set(ctx, older, `gql:Query.book{"id":"1"}`, olderEntry{
		Type:  "*github.com/layercache/layercache/contrib/graphql/internal/testgraph/model.Book",
		Value: json.RawMessage(`{"ID":"1","Name":"Dune"}`),
	})
	if err != nil {
		t.Fatal(err)
	}

	res := testgraph.NewResolver()
	s := newServer(t, res, newCache(t, []driver.Layer{redisLayer(t, srv)}), opts)
	for range 3 {
		mustContain(t, s.query(`{ book(id: "1") { title } }`, nil), `"title":"Dune"`)
	}
	wantCalls(t, res, "Query.book(1)", 1)
	mustContain(t, logs.String(), "no longer decodes", "Query.book")
}
