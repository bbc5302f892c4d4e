package gqlcache

import (
	"reflect"
	"strconv"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// maxDepth bounds the comparison; encoding/json refuses deeper values, so a
// value this deep never reaches it.
const maxDepth = 1000

// difference compares a value with its copy decoded from JSON and returns
// where they first differ ("" when they do not). It is reflect.DeepEqual
// except that time.Time values are equal when they are the same instant at
// the same offset: JSON keeps neither a time's monotonic reading nor its
// location's name, and neither changes what GraphQL returns. Unexported
// fields are compared too, since child resolvers may read them.
//
// Written by hand because reflect.DeepEqual neither allows that exception
// nor says where two values differ, which the log message needs.
func difference(a, b reflect.Value, depth int) string {
	if depth > maxDepth {
		return " (nested too deep)"
	}
	if a.IsValid() != b.IsValid() || (a.IsValid() && a.Type() != b.Type()) {
		return " (type)"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() == timeType && a.CanInterface() && b.CanInterface() {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		_, oa := ta.Zone()
		_, ob := tb.Zone()
		if ta.Equal(tb) && oa == ob {
			return ""
		}
		return " (time)"
	}
	switch a.Kind() {
	case reflect.Bool:
		return unless(a.Bool() == b.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return unless(a.Int() == b.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return unless(a.Uint() == b.Uint())
	case reflect.Float32, reflect.Float64:
		return unless(a.Float() == b.Float())
	case reflect.Complex64, reflect.Complex128:
		return unless(a.Complex() == b.Complex())
	case reflect.String:
		return unless(a.String() == b.String())
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return unless(a.IsNil() == b.IsNil())
		}
		return difference(a.Elem(), b.Elem(), depth+1)
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return " (nil or empty)"
		}
		fallthrough
	case reflect.Array:
		if a.Len() != b.Len() {
			return " (length)"
		}
		for i := range a.Len() {
			if d := difference(a.Index(i), b.Index(i), depth+1); d != "" {
				return "[" + strconv.Itoa(i) + "]" + d
			}
		}
		return ""
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			return " (nil or empty)"
		}
		if a.Len() != b.Len() {
			return " (length)"
		}
		for it := a.MapRange(); it.Next(); {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() {
				return "[missing key]"
			}
			if d := difference(it.Value(), bv, depth+1); d != "" {
				return "[key]" + d
			}
		}
		return ""
	case reflect.Struct:
		for i := range a.NumField() {
			if d := difference(a.Field(i), b.Field(i), depth+1); d != "" {
				return "." + a.Type().Field(i).Name + d
			}
		}
		return ""
	default:
		// Funcs, channels and unsafe pointers: JSON carries none of them,
		// so only their absence comes back.
		if a.IsNil() && b.IsNil() {
			return ""
		}
		return " (" + a.Kind().String() + ")"
	}
}

func unless(equal bool) string {
	if equal {
		return ""
	}
	return " (value)"
}
