package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// envValue is a value set by an environment variable. It stays a string,
// tagged with its variable, until decoding meets the field it lands in:
// only then is it known whether "5" is a count, a string or a list, and the
// variable can be named if it does not fit.
type envValue struct {
	name  string // the variable, such as LAYERCACHE_LAYERS__1__URL
	value string
}

// envError is a conversion failure of a value that an environment variable
// set; it carries the variable so that the report names it.
type envError struct {
	env string
	err error
}

func (e *envError) Error() string { return e.err.Error() }
func (e *envError) Unwrap() error { return e.err }

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	unmarshalerType     = reflect.TypeFor[mapstructure.Unmarshaler]()
)

// decode decodes raw, the value at path, into v, a non-nil pointer. Fields
// whose keys are absent keep their values. It returns every problem found,
// each located in the document or the environment.
func (s *source) decode(raw any, v any, path string) errorList {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errorList{s.errorf(path, "Decode needs a non-nil pointer, got %T", v)}
	}

	var errs errorList
	s.unknownKeys(raw, rv.Type().Elem(), path, &errs)
	// The decoder still sees the unknown keys; what it says about them,
	// or about a field they happen to reach (a `yaml:"-"` field takes the
	// key "-"), would only repeat the report.
	underUnknown := func(p string) bool {
		return slices.ContainsFunc(errs, func(e *Error) bool {
			return p == e.Path || strings.HasPrefix(p, e.Path+".") || strings.HasPrefix(p, e.Path+"[")
		})
	}
	unknownFound := len(errs) > 0

	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: convert,
		// A second line of defence: unknownKeys reports unknown keys
		// with suggestions first, and this catches any it did not model.
		ErrorUnused: true,
		// Keys match exactly: "TTL" is a typo, not another spelling.
		MatchName: func(key, field string) bool { return key == field },
		TagName:   "yaml",
		// A field without a yaml tag (a client, a callback) is for code,
		// not for files.
		IgnoreUntaggedFields: true,
		// Embedded structs share their parent's block, as `yaml:",inline"`
		// does for the YAML encoder.
		Squash:          true,
		SquashTagOption: "inline",
		Result:          v,
	})
	if err != nil {
		return errorList{s.errorf(path, "cannot decode into %T: %v", v, err)}
	}
	if raw == nil {
		return errs
	}
	if err := dec.Decode(raw); err != nil {
		for _, e := range flattenErrors(err) {
			var de *mapstructure.DecodeError
			if !errors.As(e, &de) {
				errs.add(s.wrap(path, e))
				continue
			}
			cause := de.Unwrap()
			if unknownFound && strings.HasPrefix(cause.Error(), "has invalid keys:") {
				continue // already reported, one key at a time
			}
			p := path
			if name := fieldPath(de.Name()); name != "" {
				p = joinPath(path, name)
				if strings.HasPrefix(name, "[") {
					p = path + name
				}
			}
			if underUnknown(p) {
				continue
			}
			out := s.wrap(p, cause)
			var ee *envError
			if errors.As(cause, &ee) {
				out.Env, out.Line, out.Err = ee.env, 0, ee.err
			}
			errs.add(out)
		}
	}
	return errs
}

// flattenErrors lists the leaves of a tree of joined and wrapped errors,
// stopping at mapstructure's per-field errors.
func flattenErrors(err error) []error {
	switch e := err.(type) {
	case *mapstructure.DecodeError:
		return []error{err}
	case interface{ Unwrap() []error }:
		var out []error
		for _, x := range e.Unwrap() {
			out = append(out, flattenErrors(x)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return flattenErrors(inner)
		}
	}
	return []error{err}
}

// fieldPath turns mapstructure's name for a field ("tls.ca_file",
// "addrs[0]", "labels[app]") into this package's path syntax, where a map
// key is joined with a dot like a struct field.
func fieldPath(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); {
		if name[i] != '[' {
			b.WriteByte(name[i])
			i++
			continue
		}
		j := strings.IndexByte(name[i:], ']')
		if j < 0 {
			b.WriteString(name[i:])
			break
		}
		inner := name[i+1 : i+j]
		if _, err := strconv.Atoi(inner); err == nil {
			b.WriteString(name[i : i+j+1])
		} else {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(inner)
		}
		i += j + 1
	}
	return b.String()
}

// unknownKeys walks raw along the shape of t and reports every key that no
// field of t takes, with a suggestion. Values of the wrong kind are left to
// the decoder, which reports them.
func (s *source) unknownKeys(raw any, t reflect.Type, path string, errs *errorList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok || reflect.PointerTo(t).Implements(unmarshalerType) {
			return
		}
		fields, catchAll := yamlFields(t)
		known := make([]string, 0, len(fields))
		for k := range fields {
			known = append(known, k)
		}
		for _, k := range sortedKeys(m) {
			p := joinPath(path, k)
			ft, ok := fields[k]
			if !ok {
				if !catchAll {
					errs.add(s.unknownKey(p, k, known))
				}
				continue
			}
			s.unknownKeys(m[k], ft, p, errs)
		}
	case reflect.Map:
		if m, ok := raw.(map[string]any); ok {
			for _, k := range sortedKeys(m) {
				s.unknownKeys(m[k], t.Elem(), joinPath(path, k), errs)
			}
		}
	case reflect.Slice, reflect.Array:
		if l, ok := raw.([]any); ok {
			for i, e := range l {
				s.unknownKeys(e, t.Elem(), indexPath(path, i), errs)
			}
		}
	}
}

// yamlFields lists the keys a struct takes, mirroring the decoder's rules:
// the name is the yaml tag's, untagged fields take no key, embedded structs
// and `,inline` fields lend their keys to the parent, and a `,remain`
// field takes every key left over.
func yamlFields(t reflect.Type) (fields map[string]reflect.Type, catchAll bool) {
	fields = make(map[string]reflect.Type)
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			ft := f.Type
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			optList := strings.Split(opts, ",")
			structish := ft.Kind() == reflect.Struct ||
				(ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct)
			if structish && (f.Anonymous || slices.Contains(optList, "inline")) {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				walk(ft)
				continue
			}
			if slices.Contains(optList, "remain") {
				catchAll = true
				continue
			}
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			fields[name] = ft
		}
	}
	walk(t)
	return fields, catchAll
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// convert is the decode hook: it is called for every value before it is
// stored in a field of type to. It checks that the value has the kind the
// field needs, parses durations, sizes and values from the environment, and
// refuses negative durations and counts. Its errors become the messages
// users see, so each says what was expected.
func convert(from, to reflect.Value) (any, error) {
	in := from.Interface()
	ev, fromEnv := in.(envValue)
	out, err := convertTo(in, to.Type())
	if err != nil && fromEnv {
		err = &envError{env: ev.name, err: err}
	}
	return out, err
}

func convertTo(in any, t reflect.Type) (any, error) {
	ev, fromEnv := in.(envValue)
	str, isStr := in.(string)
	if fromEnv {
		str, isStr = ev.value, true
	}

	if t == durationType {
		return toDuration(in)
	}
	if t.Kind() == reflect.Pointer {
		return in, nil // decoded again for the pointed-to type
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return plain(in), nil
	}
	if isStr && t.Kind() != reflect.String && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		p := reflect.New(t)
		if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(str)); err != nil {
			return nil, fmt.Errorf("invalid value %s: %w", quoteShort(str), err)
		}
		return p.Elem().Interface(), nil
	}

	switch t.Kind() {
	case reflect.Bool:
		switch x := in.(type) {
		case bool:
			return x, nil
		case envValue:
			b, err := strconv.ParseBool(strings.TrimSpace(x.value))
			if err != nil {
				return nil, fmt.Errorf("invalid boolean %s: expected true or false", quoteShort(x.value))
			}
			return b, nil
		}
		return nil, fmt.Errorf("expected true or false, got %s", describe(in, true))

	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := toCount(in)
		if err != nil {
			return nil, err
		}
		if n > math.MaxInt64 || reflect.Zero(t).OverflowInt(int64(n)) {
			return nil, fmt.Errorf("%d is too large for this key", n)
		}
		return int64(n), nil

	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := toCount(in)
		if err != nil {
			return nil, err
		}
		if reflect.Zero(t).OverflowUint(n) {
			return nil, fmt.Errorf("%d is too large for this key", n)
		}
		return n, nil

	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := in.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		case int:
			f = float64(x)
		case int64:
			f = float64(x)
		case uint64:
			f = float64(x)
		case envValue:
			var err error
			f, err = strconv.ParseFloat(strings.TrimSpace(x.value), 64)
			if err != nil {
				return nil, fmt.Errorf("invalid number %s", quoteShort(x.value))
			}
		default:
			return nil, fmt.Errorf("expected a number, got %s", describe(in, true))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("expected a finite number, got %v", f)
		}
		if reflect.Zero(t).OverflowFloat(f) {
			return nil, fmt.Errorf("%v is too large for this key", f)
		}
		return f, nil

	case reflect.String:
		if isStr {
			return str, nil
		}
		// The value is not shown: a string key may hold a secret.
		if _, ok := in.(map[string]any); ok {
			return nil, errors.New("expected a string, got a block of keys")
		}
		if _, ok := in.([]any); ok {
			return nil, errors.New("expected a string, got a list")
		}
		return nil, fmt.Errorf("expected a string, got %s (quote it to make it a string)", describe(in, false))

	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && isStr {
			return []byte(str), nil
		}
		if fromEnv {
			// A list from one variable: comma-separated items, each
			// decoded for the element type. An empty value is an empty
			// list.
			items := []any{}
			if strings.TrimSpace(ev.value) != "" {
				for item := range strings.SplitSeq(ev.value, ",") {
					items = append(items, envValue{name: ev.name, value: strings.TrimSpace(item)})
				}
			}
			return items, nil
		}
		if _, ok := in.([]any); ok {
			return in, nil
		}
		return nil, fmt.Errorf("expected a list, got %s", describe(in, false))

	case reflect.Map, reflect.Struct:
		if fromEnv {
			return nil, fmt.Errorf("a block of keys cannot be set from one variable; set each key with %s__<KEY>", ev.name)
		}
		if _, ok := in.(map[string]any); ok {
			return in, nil
		}
		return nil, fmt.Errorf("expected a block of keys, got %s", describe(in, false))

	case reflect.Interface:
		return plain(in), nil
	}
	return in, nil
}

// toDuration accepts a Go duration string ("100ms", "1h30m") and the
// number 0, which needs no unit. Any other bare number is refused: "60"
// could mean seconds or nanoseconds.
func toDuration(in any) (any, error) {
	var s string
	switch x := in.(type) {
	case string:
		s = x
	case envValue:
		s = x.value
	case int, int64, uint64, float64:
		var f float64
		switch n := x.(type) {
		case int:
			f = float64(n)
		case int64:
			f = float64(n)
		case uint64:
			f = float64(n)
		case float64:
			f = n
		}
		switch {
		case f == 0:
			return time.Duration(0), nil
		case f < 0:
			return nil, errNegative(x)
		}
		return nil, fmt.Errorf(`a duration needs a unit: write "%vs" for seconds or "%vms" for milliseconds`, x, x)
	default:
		return nil, fmt.Errorf(`expected a duration such as "100ms" or "1h30m", got %s`, describe(in, true))
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf(`invalid duration %s: use a Go duration such as "100ms", "1m30s" or "24h"`, quoteShort(s))
	}
	if d < 0 {
		return nil, errNegative(d)
	}
	return d, nil
}

// toCount accepts a non-negative whole number, as a number or as a size
// string ("10000", "64MiB", "1GB").
func toCount(in any) (uint64, error) {
	switch x := in.(type) {
	case int:
		if x < 0 {
			return 0, errNegative(x)
		}
		return uint64(x), nil
	case int64:
		if x < 0 {
			return 0, errNegative(x)
		}
		return uint64(x), nil
	case uint64:
		return x, nil
	case float64:
		if x < 0 {
			return 0, errNegative(x)
		}
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("expected a whole number, got %v", x)
		}
		if x >= math.MaxUint64 {
			return 0, fmt.Errorf("%v is too large for this key", x)
		}
		return uint64(x), nil
	case string:
		return parseSize(x)
	case envValue:
		return parseSize(x.value)
	}
	return 0, fmt.Errorf(`expected a whole number or a size such as "64MiB", got %s`, describe(in, true))
}

// plain replaces values set from the environment by their strings, for
// fields of interface type, which would otherwise receive the package's
// private envValue.
func plain(in any) any {
	switch x := in.(type) {
	case envValue:
		return x.value
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			out[k] = plain(v)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = plain(v)
		}
		return out
	}
	return in
}
