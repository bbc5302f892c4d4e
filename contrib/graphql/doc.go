// Package gqlcache caches gqlgen resolver results in a layercache
// [layercache.Cache].
//
// Two ways in, which can be mixed:
//
//   - [Extension], a gqlgen handler extension, caches chosen fields without
//     touching their resolvers. Fields are chosen in [Options.Fields] by
//     schema coordinate ("Query.book") or in the schema with Apollo's
//     @cacheControl(maxAge: Int, scope: PUBLIC|PRIVATE) directive.
//   - [Resolve], inside a resolver, caches whatever the resolver computes
//     under a key of its choosing: a typed [layercache.Get] that also puts
//     the field's path on traces.
//
// The extension is added to a gqlgen server like any other:
//
//	ext, err := gqlcache.New(cache, gqlcache.Options{
//		Fields: map[string]gqlcache.Policy{"Query.book": {TTL: time.Minute}},
//		Parents: map[string]func(any) (string, bool){
//			"Book": gqlcache.ParentID(func(b *model.Book) string { return b.ID }),
//		},
//		Caller: auth.UserID, // func(ctx context.Context) (string, bool)
//	})
//	if err != nil {
//		return err
//	}
//	srv := handler.New(generated.NewExecutableSchema(cfg))
//	srv.Use(ext)
//
// # Keys
//
// A field's entry is keyed by its schema coordinate, its arguments after
// coercion (so a literal and a variable with the same value share an entry)
// as canonical JSON, the identity of the object it is resolved on (from
// [Options.Parents]; every cached field outside the query root needs one, so
// that Book.reviews under a list of books is one entry per book), and, for
// fields of [Private] scope, the caller's identity (from [Options.Caller]).
// A private field is never cached for a caller Caller cannot name. Keys
// read like
//
//	gql:Query.book{"id":"42"}
//	gql:Book.reviews{"first":2}/"42"
//	gql:Query.me{}~"user-7"
//
// with arguments longer than 128 bytes replaced by their XXH3-128 hash. The
// caller's identity is part of the key as Caller returns it; return a hash
// from Caller if identities should not be readable in a shared layer.
//
// Concurrent resolutions of one key, from one request or many, run the
// resolver once (the single-flight of [layercache.Get]). A resolver error is
// returned as it is and not cached, nor is a value whose resolver reported
// errors with graphql.AddError. A resolver that panics is answered as gqlgen
// answers any panicking resolver. Values that are not cached count as failed
// loads in the cache's statistics ([layercache.Stats].LoadErrors).
//
// # Values
//
// A cached field must come back exactly as the resolver returned it, since
// the generated code asserts the resolver's Go type and resolves child fields
// from it. In-process layers keep the resolver's value itself; layers outside
// the process keep its JSON together with the name of its Go type, from
// which a value of exactly that type is decoded. So that every layer returns
// the same thing, the extension checks each value it stores by decoding its
// JSON and comparing: a value that would lose something (a non-zero
// unexported or json:"-" field, which a child resolver may read; an
// interface-typed field; a map[string]any whose numbers would come back as
// float64) is not cached at all, and the extension logs once per field and
// type which part would be lost. Lists of an interface or union type are
// stored element by element with each element's type.
//
// An instance decodes a value from a shared layer once it knows the value's
// Go type, either from [Options.Types] or from having resolved the field
// itself. Until then such a value is resolved again, once.
//
// # Directive
//
// Declare the directive as Apollo does and tell gqlgen that it has no
// runtime implementation, since the extension reads it from the schema:
//
//	directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean)
//	  on FIELD_DEFINITION | OBJECT | INTERFACE | UNION
//	enum CacheControlScope { PUBLIC PRIVATE }
//
//	# gqlgen.yml
//	directives:
//	  cacheControl:
//	    skip_runtime: true
//
// A field is cached for maxAge seconds when it has a positive maxAge, or when
// the type it returns has one and the field does not say inheritMaxAge. Its
// scope is private when the field or that type says PRIVATE. Fields of the
// mutation and subscription types are never cached.
//
// # Invalidation
//
// Every entry carries the tag [Extension.FieldTag] of its field besides the
// tags of its [Policy], so [Extension.InvalidateFields] drops every entry of
// a field, and [layercache.Cache.InvalidateTags] those of a tag such as
// "book:42" that [Policy.TagsFor] derived from the arguments or the parent.
package gqlcache
