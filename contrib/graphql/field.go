package gqlcache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/zeebo/xxh3"

	"github.com/layercache/layercache"
)

// errUncacheable is what a load returns for a value it must not store: one
// whose resolver reported errors, or that would not survive encoding. The
// caller whose resolver produced the value still returns it; the others
// that waited for the load resolve the field themselves.
var errUncacheable = errors.New("gqlcache: value not cacheable")

// load is one caller's loader for a field: its resolver, and what it
// returned when it ran.
type load struct {
	e     *Extension
	fc    *graphql.FieldContext
	next  graphql.Resolver
	ran   bool
	value any
}

func (l *load) run(ctx context.Context) (*entry, error) {
	l.ran = true
	v, err := l.next(ctx)
	l.value = v
	if err != nil {
		return nil, err
	}
	if reportedErrors(ctx, l.fc) {
		return nil, errUncacheable
	}
	ent, err := encode(&l.e.types, v)
	if err != nil {
		l.e.warnUncacheable(ctx, l.fc, v, err)
		return nil, errUncacheable
	}
	return ent, nil
}

// resolve serves one resolution of a cached field.
func (e *Extension) resolve(ctx context.Context, fc *graphql.FieldContext, r *rule, next graphql.Resolver) (any, error) {
	var parent any
	if r.parentID != nil {
		parent = parentObject(fc)
	}
	key, ok := e.key(ctx, fc, r, parent)
	if !ok {
		return next(ctx)
	}
	opts := r.entryOptions(ctx, Field{Object: fc.Object, Name: fc.Field.Name, Args: fc.Args, Parent: parent})
	ctx, span := startSpan(ctx, fc)
	l := &load{e: e, fc: fc, next: next}
	ent, err := layercache.Get(ctx, e.cache, key, l.run, opts...)
	v, err := e.outcome(ctx, key, l, ent, err, opts)
	endSpan(span, err)
	return v, err
}

// outcome turns what the cache returned into what the field returns.
func (e *Extension) outcome(ctx context.Context, key string, l *load, ent *entry, err error, opts []layercache.EntryOption) (any, error) {
	var pe *layercache.PanicError
	switch {
	case err == nil && l.ran:
		return l.value, nil
	case err == nil:
		v, derr := ent.decode(&e.types)
		if derr == nil {
			return v, nil
		}
		return e.replace(ctx, key, l, ent, derr, opts)
	case errors.As(err, &pe):
		// Let gqlgen recover it and answer as it does for any resolver
		// that panics.
		panic(pe.Value)
	case l.ran && errors.Is(err, errUncacheable):
		return l.value, nil
	case errors.Is(err, errUncacheable):
		return l.next(ctx)
	case l.ran:
		return l.value, err // the resolver's own result
	default:
		return nil, err
	}
}

// replace resolves a field whose cached entry could not be decoded. When
// the cause was a Go type this process had not seen, the resolution teaches
// it and the entry is kept; otherwise the entry no longer fits its type (a
// build with other model types stored it) and is replaced, or dropped if the
// new value cannot be cached.
func (e *Extension) replace(ctx context.Context, key string, l *load, cached *entry, cause error, opts []layercache.EntryOption) (any, error) {
	v, err := l.next(ctx)
	if err != nil || reportedErrors(ctx, l.fc) {
		return v, err
	}
	fresh, encErr := encode(&e.types, v)
	if encErr != nil {
		e.warnUncacheable(ctx, l.fc, v, encErr)
	}
	if errors.Is(cause, errUnknownType) {
		if _, err := cached.decode(&e.types); err == nil {
			return v, nil
		}
	} else {
		e.warnOnce(ctx, "decode:"+l.fc.Object+"."+l.fc.Field.Name,
			"gqlcache: a cached value no longer decodes; it is resolved again and replaced",
			slog.String("field", l.fc.Object+"."+l.fc.Field.Name), slog.String("error", cause.Error()))
	}
	if encErr != nil {
		err = e.cache.Delete(ctx, key)
	} else {
		err = layercache.Set(ctx, e.cache, key, fresh, opts...)
	}
	if err != nil {
		e.log.LogAttrs(ctx, slog.LevelDebug, "gqlcache: replacing a cached value failed",
			slog.String("field", l.fc.Object+"."+l.fc.Field.Name), slog.String("error", err.Error()))
	}
	return v, nil
}

func (e *Extension) warnUncacheable(ctx context.Context, fc *graphql.FieldContext, v any, err error) {
	coord := fc.Object + "." + fc.Field.Name
	e.warnOnce(ctx, fmt.Sprintf("value:%s:%T", coord, v),
		"gqlcache: a field's value cannot be cached; it is resolved on every request",
		slog.String("field", coord), slog.String("reason", err.Error()))
}

// reportedErrors says whether errors were added for the field or below it
// (graphql.AddError) while it resolved.
func reportedErrors(ctx context.Context, fc *graphql.FieldContext) bool {
	errs := graphql.GetErrors(ctx)
	if len(errs) == 0 {
		return false
	}
	path := fc.Path()
	for _, err := range errs {
		if hasPrefix(err.Path, path) {
			return true
		}
	}
	return false
}

func hasPrefix(p, prefix ast.Path) bool {
	if len(p) < len(prefix) {
		return false
	}
	for i := range prefix {
		if p[i] != prefix[i] {
			return false
		}
	}
	return true
}

// parentObject returns the object fc's field is resolved on, as its resolver
// receives it. gqlgen keeps it as its parent field's result, or, inside a
// list, as a pointer to the list's element.
func parentObject(fc *graphql.FieldContext) any {
	p := fc.Parent
	if p == nil {
		return nil
	}
	if p.Index == nil {
		return p.Result
	}
	rv := reflect.ValueOf(p.Result)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if k := rv.Elem().Kind(); k == reflect.Pointer || k == reflect.Interface {
			return rv.Elem().Interface()
		}
	}
	return p.Result
}

// maxArgsInKey is the length of encoded arguments beyond which a key holds
// their hash instead.
const maxArgsInKey = 128

// key builds the field's cache key: the prefixed coordinate, the arguments
// as canonical JSON (encoding/json sorts map keys), then the parent's and the
// caller's identities, quoted so that no identity can pass for another key's.
// ok is false when the field must be resolved without the cache.
func (e *Extension) key(ctx context.Context, fc *graphql.FieldContext, r *rule, parent any) (string, bool) {
	var buf [128]byte
	b := append(buf[:0], r.stem...)
	n := len(b)
	b, err := appendArgs(b, fc.Args)
	if err != nil {
		e.warnOnce(ctx, "args:"+r.coordinate, "gqlcache: a field's arguments cannot be encoded; it is resolved without the cache",
			slog.String("field", r.coordinate), slog.String("error", err.Error()))
		return "", false
	}
	if len(b)-n > maxArgsInKey {
		h := xxh3.Hash128(b[n:]).Bytes()
		b = append(b[:n], '#')
		b = hex.AppendEncode(b, h[:])
	}
	if r.parentID != nil {
		id, ok := r.parentID(parent)
		if !ok {
			return "", false
		}
		b = append(b, '/')
		b = strconv.AppendQuote(b, id)
	}
	if r.scope == Private {
		id, ok := e.opts.Caller(ctx)
		if !ok {
			return "", false
		}
		b = append(b, '~')
		b = strconv.AppendQuote(b, id)
	}
	return string(b), true
}
