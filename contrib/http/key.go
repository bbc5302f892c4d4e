package httpcache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// keyPrefix starts every key the middleware stores, so that responses
// never meet the program's own values in a shared cache.
const keyPrefix = "httpcache:"

// DefaultKey is the key of a request when Options.Key is not set: the
// method, the host in lower case, the escaped path and the query with its
// parameters sorted by name. Parameters of one name keep their order, since
// handlers may read them as an ordered list (?tag=b&tag=a is not
// ?tag=a&tag=b).
func DefaultKey(r *http.Request) string {
	var buf [256]byte
	return string(appendDefaultKey(buf[:0], r))
}

// fullKey returns the key the middleware stores r's response under, or ""
// when the key function declines the request.
func (s *settings) fullKey(r *http.Request, key func() string) string {
	var user string
	switch {
	case key != nil:
		user = key()
	case s.key != nil:
		user = s.key(r)
	default:
		var buf [256]byte
		return string(appendDefaultKey(append(buf[:0], keyPrefix...), r))
	}
	if user == "" {
		return ""
	}
	return keyPrefix + user
}

func appendDefaultKey(b []byte, r *http.Request) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	for i := 0; i < len(r.Host); i++ { // host names are case-insensitive
		c := r.Host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = append(b, r.URL.EscapedPath()...)
	if q := r.URL.RawQuery; q != "" {
		b = append(b, '?')
		b = appendSortedQuery(b, q)
	}
	return b
}

// appendSortedQuery appends the parameters of q stably sorted by name,
// without decoding them. Most queries are already in order and are copied
// as they are.
func appendSortedQuery(b []byte, q string) []byte {
	if querySorted(q) {
		return append(b, q...)
	}
	params := strings.Split(q, "&")
	params = slices.DeleteFunc(params, func(p string) bool { return p == "" })
	slices.SortStableFunc(params, func(a, b string) int { return strings.Compare(paramName(a), paramName(b)) })
	for i, p := range params {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p...)
	}
	return b
}

func querySorted(q string) bool {
	prev := ""
	for q != "" {
		var p string
		p, q, _ = strings.Cut(q, "&")
		if p == "" {
			return false
		}
		name := paramName(p)
		if name < prev {
			return false
		}
		prev = name
	}
	return true
}

func paramName(p string) string {
	name, _, _ := strings.Cut(p, "=")
	return name
}

// variantKey is the key of the response to r among the variants stored
// under base, which vary with the request headers names. Each value is
// length-prefixed, so no value can pass for another combination.
func variantKey(base string, names []string, r *http.Request) string {
	b := make([]byte, 0, len(base)+64)
	b = append(b, base...)
	b = append(b, " vary"...)
	for _, name := range names {
		v := strings.Join(r.Header.Values(name), ", ")
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b)
}
