package gqlcache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	gqlcache "github.com/layercache/layercache/contrib/graphql"
)

// mockSchema is an executable schema that only has a schema, which is all
// Validate looks at.
func mockSchema(t testing.TB, sdl string) graphql.ExecutableSchema {
	t.Helper()
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "test.graphqls", Input: sdl})
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	return &graphql.ExecutableSchemaMock{SchemaFunc: func() *ast.Schema { return s }}
}

const directiveSDL = `
directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION
enum CacheControlScope { PUBLIC PRIVATE }
`

func TestNew_RejectsBadOptions(t *testing.T) {
	c := newMemoryCache(t)
	cases := []struct {
		name string
		opts gqlcache.Options
		want string
	}{
		{"coordinate without a dot", gqlcache.Options{Fields: map[string]gqlcache.Policy{"book": {}}}, `Fields["book"]: want a schema coordinate`},
		{"coordinate with two dots", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Query.book.id": {}}}, `want a schema coordinate`},
		{"negative TTL", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Query.book": {TTL: -time.Second}}}, `negative TTL`},
		{"unknown scope", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Query.book": {Scope: 7}}}, `unknown scope`},
		{"nil parent function", gqlcache.Options{Parents: map[string]func(any) (string, bool){"Book": nil}}, `Parents["Book"] is nil`},
		{"untyped nil type", gqlcache.Options{Types: []any{nil}}, `Types[0] is nil`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gqlcache.New(c, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := gqlcache.New(nil, gqlcache.Options{}); err == nil {
		t.Fatal("a nil cache was accepted")
	}
}

func TestValidate_RejectsWhatTheSchemaCannotServe(t *testing.T) {
	sdl := directiveSDL + `
type Query { book(id: ID!): Book  node: Node  me: User @cacheControl(maxAge: 5, scope: PRIVATE) }
type Mutation { save: Int }
interface Node { id: ID! }
type Book implements Node { id: ID!  title: String  author: Author }
type Author @cacheControl(maxAge: 10) { name: String }
type User { name: String }
`
	caller := func(context.Context) (string, bool) { return "", false }
	cases := []struct {
		name string
		opts gqlcache.Options
		want string // "" for no error
	}{
		{"unknown type", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Nope.x": {}}, Caller: caller}, `the schema has no type Nope`},
		{"unknown field", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Query.nope": {}}, Caller: caller}, `type Query has no field nope`},
		{"mutation field", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Mutation.save": {}}, Caller: caller}, `fields of the Mutation type are never cached`},
		{"not an object", gqlcache.Options{Fields: map[string]gqlcache.Policy{"CacheControlScope.x": {}}, Caller: caller}, `only fields of objects and interfaces`},
		{"field needing a parent identity", gqlcache.Options{Fields: map[string]gqlcache.Policy{"Book.title": {}}, Caller: caller}, `Book.title is cached but objects of type Book have no identity`},
		// Author's type hint caches Book.author, which needs Book's identity.
		{"type hint needing a parent identity", gqlcache.Options{Caller: caller}, `Book.author is cached`},
		{"private field without Caller", gqlcache.Options{Parents: bookParents()}, `Query.me is cached with private scope, which needs Options.Caller`},
		{"parent of an unknown type", gqlcache.Options{Parents: map[string]func(any) (string, bool){"Nope": func(any) (string, bool) { return "", false }}, Caller: caller}, `Parents["Nope"]`},
		{"interface identity covers objects", gqlcache.Options{
			Fields:  map[string]gqlcache.Policy{"Node.id": {}},
			Parents: map[string]func(any) (string, bool){"Node": func(any) (string, bool) { return "", false }},
			Caller:  caller,
		}, ""},
		{"directives off", gqlcache.Options{Directive: "-"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ext, err := gqlcache.New(newMemoryCache(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			err = ext.Validate(mockSchema(t, sdl))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidate_RejectsDirectiveOfAnotherShape(t *testing.T) {
	cases := map[string]string{
		"maxAge as a string": `directive @cacheControl(maxAge: String) on FIELD_DEFINITION
type Query { a: Int @cacheControl(maxAge: "5") }`,
		"scope as a string": `directive @cacheControl(scope: String) on FIELD_DEFINITION
type Query { a: Int @cacheControl(scope: "PRIVATE") }`,
		"negative maxAge": directiveSDL + `type Query { a: Int @cacheControl(maxAge: -5) }`,
	}
	for name, sdl := range cases {
		t.Run(name, func(t *testing.T) {
			ext, err := gqlcache.New(newMemoryCache(t), gqlcache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := ext.Validate(mockSchema(t, sdl)); err == nil || !strings.Contains(err.Error(), "@cacheControl") {
				t.Fatalf("err = %v, want one about @cacheControl", err)
			}
		})
	}
}

func TestValidate_OtherDirectiveName(t *testing.T) {
	sdl := `directive @cached(maxAge: Int) on FIELD_DEFINITION
type Query { a: Int @cached(maxAge: -1) }`
	ext, err := gqlcache.New(newMemoryCache(t), gqlcache.Options{Directive: "cached"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Validate(mockSchema(t, sdl)); err == nil || !strings.Contains(err.Error(), "@cached(maxAge: -1)") {
		t.Fatalf("err = %v, want one about @cached", err)
	}
}

func bookParents() map[string]func(any) (string, bool) {
	return map[string]func(any) (string, bool){"Book": func(any) (string, bool) { return "", false }}
}
