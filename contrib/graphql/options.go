package gqlcache

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/layercache/layercache"
)

// Options configures an [Extension]. The zero Options caches the fields the
// schema marks with @cacheControl, and nothing else.
type Options struct {
	// Fields chooses fields to cache by schema coordinate, "Type.field",
	// and says how. A coordinate of an interface applies to that field of
	// every object type implementing it. A field listed here is cached
	// whether or not the schema marks it; a directive on it fills in what
	// its Policy leaves zero.
	Fields map[string]Policy

	// Directive is the name of the directive that marks cached fields and
	// types in the schema. Default: "cacheControl". "-" ignores directives.
	Directive string

	// Parents returns the identity of the objects of a type, by type name;
	// an interface's name covers the object types implementing it. A
	// cached field of any type but the query root is keyed by the identity
	// of the object it is resolved on, so that type must be listed here
	// ([Extension.Validate] fails otherwise). ParentID makes an entry from a
	// function of the model type. When it returns false, the field is
	// resolved without the cache.
	Parents map[string]func(parent any) (id string, ok bool)

	// Caller returns the identity of the caller, such as a user id, for
	// fields of Private scope; it is part of their keys. Required when any
	// field is private. When it returns false (an anonymous caller), private
	// fields are resolved without the cache.
	Caller func(ctx context.Context) (id string, ok bool)

	// Types lists values of the Go types that cached fields return, such
	// as (*model.Book)(nil), []*model.Book(nil) and, for a list of a union,
	// []model.SearchResult(nil) and the union's members. An instance uses
	// a value that another instance stored in a shared layer once it knows
	// its Go type: from this list, or after resolving the field once
	// itself. Optional.
	Types []any

	// KeyPrefix starts every key and tag the extension makes. Change it
	// when a deploy changes what cached fields return, so that the new
	// version does not read the old one's entries. Default: "gql:".
	KeyPrefix string

	// Logger reports fields whose values cannot be cached (once per field
	// and Go type) and failed cache writes. Default: slog.Default().
	Logger *slog.Logger
}

// Policy says how a field is cached. The zero Policy caches the field with
// its directive's maxAge and scope, or else with the cache's default TTL and
// Public scope.
type Policy struct {
	// TTL is how long a value stays fresh. Zero takes the field's
	// @cacheControl maxAge, or else leaves the lifetime to the cache's
	// defaults and layers. Negative is an error.
	TTL time.Duration

	// Scope says whether entries are shared by every caller (Public) or
	// kept per caller (Private). Zero takes the directive's scope, or else
	// Public.
	Scope Scope

	// Tags are attached to every entry of the field, besides the field's
	// own tag ([Extension.FieldTag]).
	Tags []string

	// TagsFor returns tags for one resolution, derived from its arguments
	// or parent, such as "book:"+f.Args["id"].(string). Optional. It is
	// called on every resolution of the field, cache hit or not.
	TagsFor func(ctx context.Context, f Field) []string

	// EntryOptions are given to the cache on every read of the field after
	// the TTL, such as layercache.WithStaleWhileRevalidate. Tags belong in
	// Tags and TagsFor, not here: the extension passes all of a field's tags
	// in a single layercache.WithTags.
	EntryOptions []layercache.EntryOption
}

// Scope says who may share a cached value, as @cacheControl's scope does.
type Scope uint8

// The scopes. The zero Scope in a Policy takes the directive's.
const (
	// Public values are shared by every caller.
	Public Scope = iota + 1
	// Private values are kept per caller, as named by Options.Caller.
	Private
)

// String returns PUBLIC or PRIVATE, as the directive spells them.
func (s Scope) String() string {
	switch s {
	case Public:
		return "PUBLIC"
	case Private:
		return "PRIVATE"
	case 0:
		return "unset"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// Field describes one resolution of a cached field, for [Policy.TagsFor].
type Field struct {
	Object string         // the object type the field is resolved on
	Name   string         // the field's name (not its alias)
	Args   map[string]any // the arguments after coercion, defaults included
	Parent any            // the object the field is resolved on; nil on the query root
}

// ParentID turns a function of a model type into an entry of
// [Options.Parents]. The function is called with the parent object whether
// gqlgen holds it as T or as *T; any other type is not identified.
func ParentID[T any](id func(T) string) func(parent any) (string, bool) {
	return func(parent any) (string, bool) {
		if v := reflect.ValueOf(parent); v.Kind() == reflect.Pointer && v.IsNil() {
			return "", false
		}
		switch p := parent.(type) {
		case T:
			return id(p), true
		case *T:
			if p != nil {
				return id(*p), true
			}
		}
		return "", false
	}
}
