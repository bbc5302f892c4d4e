package gqlcache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
)

// entry is what the cache holds for one resolution of a field. In-process
// layers keep the *entry itself, with the resolver's value in value. Layers
// outside the process keep the exported fields, encoded by the cache's codec:
// the value's JSON and the name of its Go type, from which decode rebuilds a
// value of exactly that type.
type entry struct {
	// Type names the value's Go type (see typeName); "" for a nil value.
	Type string `json:"t" msgpack:"t"`
	// List says that Value holds a list of an interface type as an array
	// of items, each with its own Type, or null for a nil slice.
	List  bool            `json:"l,omitempty" msgpack:"l,omitempty"`
	Value json.RawMessage `json:"v" msgpack:"v"`

	// value is the Go value: set when the entry is made, or the first time
	// an entry read from a shared layer is decoded. Entries are shared by
	// concurrent requests, hence the atomic.
	value atomic.Pointer[any]
}

// item is one element of a list of an interface type.
type item struct {
	Type  string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

var null = json.RawMessage("null")

// errLossy reports a value that would not survive encoding: it does not
// decode from its own JSON (err), or comes back different at path.
type errLossy struct {
	typ  string
	path string
	err  error
}

func (e *errLossy) Error() string {
	if e.err != nil {
		return fmt.Sprintf("a %s does not decode from its own JSON: %v", e.typ, e.err)
	}
	return fmt.Sprintf("a %s does not come back the same from JSON: %s would be lost or changed", e.typ, e.path)
}

// encode makes the entry for v, after checking that decoding it gives v
// back, and learns the Go types involved.
func encode(types *typeRegistry, v any) (*entry, error) {
	e := &entry{}
	e.value.Store(&v)
	if v == nil {
		e.Value = null
		return e, nil
	}
	rv := reflect.ValueOf(v)
	t := rv.Type()
	e.Type = types.learn(t)
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Interface {
		raw, err := roundTrip(rv)
		e.Value = raw
		return e, err
	}
	e.List = true
	if rv.IsNil() {
		e.Value = null
		return e, nil
	}
	items := make([]item, rv.Len())
	for i := range items {
		el := rv.Index(i)
		if el.IsNil() {
			items[i].Value = null
			continue
		}
		el = el.Elem()
		items[i].Type = types.learn(el.Type())
		raw, err := roundTrip(el)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		items[i].Value = raw
	}
	raw, err := json.Marshal(items)
	e.Value = raw
	return e, err
}

// roundTrip encodes v and checks that the encoding decodes back to v.
func roundTrip(v reflect.Value) (json.RawMessage, error) {
	raw, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, err
	}
	back, err := decodeInto(v.Type(), raw)
	if err != nil {
		return nil, &errLossy{typ: typeName(v.Type()), err: err}
	}
	if d := difference(v, back, 0); d != "" {
		return nil, &errLossy{typ: typeName(v.Type()), path: "value" + d}
	}
	return raw, nil
}

// decodeInto decodes raw into a new value of type t. Unknown object keys are
// errors, so that a value stored by a build whose struct had more fields is
// refused rather than half-read.
func decodeInto(t reflect.Type, raw []byte) (reflect.Value, error) {
	p := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p.Interface()); err != nil {
		return reflect.Value{}, err
	}
	if dec.More() {
		return reflect.Value{}, errors.New("data after the value")
	}
	return p.Elem(), nil
}

// decode returns the entry's Go value, decoding it on first use.
func (e *entry) decode(types *typeRegistry) (any, error) {
	if p := e.value.Load(); p != nil {
		return *p, nil
	}
	v, err := e.decodeValue(types)
	if err != nil {
		return nil, err
	}
	e.value.Store(&v)
	return v, nil
}

func (e *entry) decodeValue(types *typeRegistry) (any, error) {
	if e.Type == "" {
		if !bytes.Equal(bytes.TrimSpace(e.Value), null) {
			return nil, errors.New("gqlcache: a value without a type")
		}
		return nil, nil
	}
	t, err := types.lookup(e.Type)
	if err != nil {
		return nil, err
	}
	if !e.List {
		v, err := decodeInto(t, e.Value)
		if err != nil {
			return nil, err
		}
		return v.Interface(), nil
	}
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Interface {
		return nil, fmt.Errorf("gqlcache: %s is not a list of an interface type", e.Type)
	}
	var items []item
	if err := json.Unmarshal(e.Value, &items); err != nil {
		return nil, err
	}
	if items == nil {
		return reflect.Zero(t).Interface(), nil
	}
	s := reflect.MakeSlice(t, len(items), len(items))
	for i, it := range items {
		if it.Type == "" {
			continue // a nil element
		}
		et, err := types.lookup(it.Type)
		if err != nil {
			return nil, err
		}
		if !et.AssignableTo(t.Elem()) {
			return nil, fmt.Errorf("gqlcache: a %s is not a %s", it.Type, t.Elem())
		}
		v, err := decodeInto(et, it.Value)
		if err != nil {
			return nil, err
		}
		s.Index(i).Set(v)
	}
	return s.Interface(), nil
}
