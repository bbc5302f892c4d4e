package gqlcache

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// appendArgs appends a field's arguments as JSON, exactly as
// json.Marshal(args) would write them (keys sorted), but without its
// allocations for the values arguments usually have: IDs, strings, integers,
// booleans and nulls. Other values go through encoding/json.
func appendArgs(b []byte, args map[string]any) ([]byte, error) {
	if len(args) == 0 {
		return append(b, "{}"...), nil
	}
	var small [8]arg
	sorted := small[:0]
	for k, v := range args {
		sorted = append(sorted, arg{k, v})
	}
	if len(sorted) > 1 {
		slices.SortFunc(sorted, func(a, b arg) int { return strings.Compare(a.name, b.name) })
	}
	b = append(b, '{')
	for i, a := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		// Argument names are GraphQL names ([_A-Za-z][_0-9A-Za-z]*),
		// which JSON writes as they are.
		b = append(b, '"')
		b = append(b, a.name...)
		b = append(b, '"', ':')
		var err error
		if b, err = appendValue(b, a.value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

type arg struct {
	name  string
	value any
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		if plainString(x) {
			b = append(b, '"')
			b = append(b, x...)
			return append(b, '"'), nil
		}
	case *string:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendValue(b, *x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case *int:
		if x == nil {
			return append(b, "null"...), nil
		}
		return strconv.AppendInt(b, int64(*x), 10), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// plainString reports whether encoding/json writes s between quotes
// unchanged: printable ASCII other than the characters it escapes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
