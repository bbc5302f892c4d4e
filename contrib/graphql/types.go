package gqlcache

import (
	"errors"
	"reflect"
	"strconv"
	"sync"
)

// errUnknownType reports a value from a shared layer whose Go type this
// process has not seen yet.
var errUnknownType = errors.New("gqlcache: Go type not known yet")

// typeRegistry maps the names stored beside encoded values back to Go types.
// A process learns a type when it encodes a value of it or from
// Options.Types; both maps only grow, and there are as many entries as
// there are Go types that cached fields return.
type typeRegistry struct {
	names  sync.Map // reflect.Type -> string
	byName sync.Map // string -> reflect.Type, or ambiguous
}

// ambiguous marks a name that two distinct types share (types declared
// inside functions can); values stored under it are never decoded.
type ambiguous struct{}

// learn returns t's name and makes the name known.
func (r *typeRegistry) learn(t reflect.Type) string {
	if n, ok := r.names.Load(t); ok {
		return n.(string)
	}
	n := typeName(t)
	if prev, loaded := r.byName.LoadOrStore(n, t); loaded && prev != reflect.Type(t) {
		r.byName.Store(n, ambiguous{})
	}
	r.names.Store(t, n)
	return n
}

// lookup returns the type stored values of name decode into.
func (r *typeRegistry) lookup(name string) (reflect.Type, error) {
	v, ok := r.byName.Load(name)
	if !ok {
		return nil, errUnknownType
	}
	t, ok := v.(reflect.Type)
	if !ok {
		return nil, errors.New("gqlcache: two Go types are named " + name)
	}
	return t, nil
}

// typeName names t by its package path, so that two packages' model.Book
// do not meet: "*example.com/app/graph/model.Book", "[]int".
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return t.Name()
		}
		return t.PkgPath() + "." + t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	}
	return t.String()
}
