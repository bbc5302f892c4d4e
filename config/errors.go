package config

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is one problem with a configuration: a key of the document, a value
// set from the environment, or the document as a whole. [Load], [Parse],
// [Config.Validate] and [Block.Decode] return an *Error, or several joined
// with [errors.Join]; match them with [errors.As].
type Error struct {
	// Source names the document: the path given to [Load] or the source
	// given to [Parse]. It is empty for a Config built in code.
	Source string

	// Line is the line of Source the key is on, or 0 when it is not known
	// or when the value came from the environment.
	Line int

	// Env is the environment variable that set the value, or "" when it
	// came from the document.
	Env string

	// Path is the key's path, such as "layers[1].timeout", or "" when the
	// problem is with the document as a whole.
	Path string

	// Err says what is wrong.
	Err error
}

// Error formats the problem as
// "layercache/config: <source>:<line>: <path>: <what is wrong>", naming
// the environment variable instead of the source when a variable set the
// value.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("layercache/config: ")
	switch {
	case e.Env != "":
		b.WriteString("env ")
		b.WriteString(e.Env)
		b.WriteString(": ")
	case e.Source != "":
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// source is what a parsed document knows about where its values came from,
// so that a problem found later (by a driver decoding its block, or by
// Validate) can still be reported with its file, line or variable.
// It is read-only once parsing has finished.
type source struct {
	name  string
	lines map[string]int    // key path -> line of the key in the document
	env   map[string]string // key path -> variable that set or created it
}

// errorf builds an *Error for path, locating it in the document or the
// environment. s may be nil (a Config built in code).
func (s *source) errorf(path, format string, args ...any) *Error {
	return s.wrap(path, fmt.Errorf(format, args...))
}

// wrap builds an *Error for path with err as its cause.
func (s *source) wrap(path string, err error) *Error {
	e := &Error{Path: path, Err: err}
	if s == nil {
		return e
	}
	e.Source = s.name
	e.Line, e.Env = s.locate(path)
	return e
}

// locate finds where the value at path came from: the variable that set it
// or the line of its key. A path with no entry of its own (a value deep
// inside a list, a key a default filled in) is placed at its nearest
// ancestor that has one.
func (s *source) locate(path string) (line int, env string) {
	for p := path; ; p = parentPath(p) {
		if v, ok := s.env[p]; ok {
			return 0, v
		}
		if l, ok := s.lines[p]; ok {
			return l, ""
		}
		if p == "" {
			return 0, ""
		}
	}
}

// joinPath appends a map key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath drops the last key or index of a path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// errorList gathers *Errors and joins them in path order, so that the
// report does not depend on map iteration order.
type errorList []*Error

func (l *errorList) add(e ...*Error) { *l = append(*l, e...) }

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	if len(l) == 1 {
		return l[0]
	}
	sorted := slices.Clone(l)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Error(), b.Error()))
	})
	errs := make([]error, len(sorted))
	for i, e := range sorted {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// unknownKey reports key, found at path, that is not one of known, with a
// suggestion when one of the known keys is a likely intended spelling.
func (s *source) unknownKey(path, key string, known []string) *Error {
	if best, ok := suggest(key, known); ok {
		return s.errorf(path, "unknown key (did you mean %q?)", best)
	}
	if len(known) > 0 && len(known) <= 12 {
		sorted := slices.Clone(known)
		slices.Sort(sorted)
		return s.errorf(path, "unknown key (known keys: %s)", strings.Join(sorted, ", "))
	}
	return s.errorf(path, "unknown key")
}

// suggest returns the known key closest to key when it is close enough to
// be a likely misspelling: at most two edits, and fewer edits than half the
// key's length so that short keys do not match everything. Case is
// ignored, so "TTL" suggests "ttl". Failing that, a key that starts the
// name of exactly one known key ("retry" for "retry_after") suggests it.
func suggest(key string, known []string) (string, bool) {
	lk := strings.ToLower(key)
	limit := min(2, utf8.RuneCountInString(lk)/2)
	best, bestDist := "", limit+1
	for _, k := range known {
		d := levenshtein(lk, strings.ToLower(k))
		if d < bestDist || (d == bestDist && best != "" && k < best) {
			best, bestDist = k, d
		}
	}
	if best != "" && bestDist <= limit {
		return best, true
	}
	if len(lk) < 3 {
		return "", false
	}
	var prefixed []string
	for _, k := range known {
		if strings.HasPrefix(strings.ToLower(k), lk) {
			prefixed = append(prefixed, k)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0], true
	}
	return "", false
}

// levenshtein is the edit distance between a and b counted in runes.
// Written here rather than imported: it is ten lines and only ever sees
// short keys.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

var yamlLine = regexp.MustCompile(`^yaml: (?:unmarshal errors:\s*)?line (\d+): `)

// yamlError turns an error of the YAML parser into an *Error with the line
// as a field of its own. The parser leaves the line out of a syntax error
// on the first line, so a missing line means line 1, except for the
// problems of anchors and aliases, which it never places.
func (s *source) yamlError(err error) *Error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		if !strings.Contains(msg, "anchor") && !strings.Contains(msg, "alias") {
			line = 1
		}
	}
	// Several problems come one per line; the first is the one to fix.
	msg, _, _ = strings.Cut(msg, "\n")
	return &Error{Source: s.name, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)}
}

// describe names the kind of a document value for an error message. It
// shows the value itself only where that helps and cannot leak a secret:
// booleans, numbers and short strings offered where a duration, size or
// boolean was expected.
func describe(v any, showValue bool) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case bool:
		return fmt.Sprintf("a boolean (%t)", x)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		if showValue {
			return fmt.Sprintf("a number (%v)", x)
		}
		return "a number"
	case string:
		if showValue {
			return "a string (" + quoteShort(x) + ")"
		}
		return "a string"
	case envValue:
		if showValue {
			return quoteShort(x.value)
		}
		return "a string"
	case time.Time:
		return "a timestamp"
	case []any:
		return "a list"
	case map[string]any:
		return "a block of keys"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// quoteShort quotes s, cut short so that a pasted blob does not flood the
// message.
func quoteShort(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		return strconv.Quote(string(r[:limit])) + "..."
	}
	return strconv.Quote(s)
}
