package gqlcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"

	"github.com/layercache/layercache"
)

// Extension is a gqlgen handler extension that caches the results of chosen
// fields' resolvers in a layercache [layercache.Cache]. Make it with New and
// add it to a server with Use, which calls Validate:
//
//	srv := handler.New(generated.NewExecutableSchema(cfg))
//	srv.Use(ext)
//
// An Extension is safe for concurrent use and serves one schema (the
// servers it is added to may share it).
type Extension struct {
	cache *layercache.Cache
	opts  Options
	log   *slog.Logger
	rules atomic.Pointer[ruleSet]
	types typeRegistry
	// warned holds the problems already logged, so that each is logged
	// once rather than on every request.
	warned sync.Map
}

var errOtherSchema = errors.New("gqlcache: the extension already serves another schema; make one extension per schema")

var (
	_ graphql.HandlerExtension = (*Extension)(nil)
	_ graphql.FieldInterceptor = (*Extension)(nil)
)

// New returns an extension that caches fields in c as opts says. It checks
// what it can without the schema; the rest is checked by Validate when the
// extension is added to a server.
func New(c *layercache.Cache, opts Options) (*Extension, error) {
	if c == nil {
		return nil, errors.New("gqlcache: nil cache")
	}
	var errs []error
	for _, coord := range sortedKeys(opts.Fields) {
		p := opts.Fields[coord]
		typeName, fieldName, ok := strings.Cut(coord, ".")
		if !ok || typeName == "" || fieldName == "" || strings.Contains(fieldName, ".") {
			errs = append(errs, fmt.Errorf("gqlcache: Fields[%q]: want a schema coordinate, Type.field", coord))
		}
		if p.TTL < 0 {
			errs = append(errs, fmt.Errorf("gqlcache: Fields[%q]: negative TTL %v", coord, p.TTL))
		}
		if p.Scope > Private {
			errs = append(errs, fmt.Errorf("gqlcache: Fields[%q]: unknown scope %v", coord, p.Scope))
		}
	}
	for _, name := range sortedKeys(opts.Parents) {
		if opts.Parents[name] == nil {
			errs = append(errs, fmt.Errorf("gqlcache: Parents[%q] is nil", name))
		}
	}
	e := &Extension{cache: c, opts: opts, log: opts.Logger}
	for i, v := range opts.Types {
		if v == nil {
			errs = append(errs, fmt.Errorf("gqlcache: Types[%d] is nil; give a typed value such as (*model.Book)(nil)", i))
			continue
		}
		e.types.learn(reflect.TypeOf(v))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if e.opts.KeyPrefix == "" {
		e.opts.KeyPrefix = "gql:"
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e, nil
}

// ExtensionName names the extension in gqlgen's stats and logs.
func (e *Extension) ExtensionName() string { return "FieldCache" }

// Validate resolves the options and the schema's @cacheControl directives
// into the fields to cache, and fails when the options name a type or field
// that the schema lacks, cache a mutation or subscription field, or cache a
// field that can be neither keyed by its parent (no Options.Parents for its
// type) nor by its caller (private, without Options.Caller). gqlgen calls it
// from Use and panics with its error.
func (e *Extension) Validate(schema graphql.ExecutableSchema) error {
	s := schema.Schema()
	if cur := e.rules.Load(); cur != nil {
		if cur.schema == s {
			return nil
		}
		return errOtherSchema
	}
	set, err := buildRules(s, &e.opts)
	if err != nil {
		return err
	}
	if !e.rules.CompareAndSwap(nil, set) {
		return e.Validate(schema) // another Validate won the race; compare with it
	}
	return nil
}

// InterceptField serves a cached field from the cache, or resolves it and
// caches the result; other fields are resolved as they are.
func (e *Extension) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	set := e.rules.Load()
	if set == nil {
		return next(ctx)
	}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil {
		return next(ctx)
	}
	r := set.fields[fieldRef{fc.Object, fc.Field.Name}]
	if r == nil {
		return next(ctx)
	}
	return e.resolve(ctx, fc, r, next)
}

// FieldTag returns the tag every entry of the field at coordinate
// ("Query.book") carries.
func (e *Extension) FieldTag(coordinate string) string {
	return fieldTag(e.opts.KeyPrefix, coordinate)
}

// InvalidateFields drops every cached entry of the fields at coordinates,
// on every instance. An interface's coordinate covers that field of the
// object types it stood for in Options.Fields.
func (e *Extension) InvalidateFields(ctx context.Context, coordinates ...string) error {
	var tags []string
	set := e.rules.Load()
	for _, c := range coordinates {
		if set != nil && set.expand[c] != nil {
			for _, oc := range set.expand[c] {
				tags = append(tags, e.FieldTag(oc))
			}
			continue
		}
		tags = append(tags, e.FieldTag(c))
	}
	return e.cache.InvalidateTags(ctx, tags...)
}

// warnOnce logs a problem the first time it happens for a field.
func (e *Extension) warnOnce(ctx context.Context, id, msg string, attrs ...slog.Attr) {
	if _, seen := e.warned.LoadOrStore(id, struct{}{}); seen {
		return
	}
	e.log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
}
