package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/providers/env/v2"
)

// EnvPrefix starts the name of every environment variable that overrides
// a configuration value. See the package documentation for the mapping.
const EnvPrefix = "LAYERCACHE_"

// envSeparator separates the keys of a path in a variable's name. Keys are
// snake_case with single underscores, so a double one cannot be part of a
// key.
const envSeparator = "__"

// override is one LAYERCACHE_* variable.
type override struct {
	name  string
	value string
}

// readEnv collects the LAYERCACHE_* variables from environ (os.Environ
// outside tests), sorted by name so that the order of application, and of
// any errors, does not depend on the environment's order.
func readEnv(environ func() []string) ([]override, error) {
	// The delimiter is empty: names are split here, not by the
	// provider, because a numeric key indexes a list, which the
	// provider's nested maps cannot express.
	vars, err := env.Provider("", env.Opt{Prefix: EnvPrefix, EnvironFunc: environ}).Read()
	if err != nil {
		return nil, fmt.Errorf("layercache/config: reading the environment: %w", err)
	}
	out := make([]override, 0, len(vars))
	for name, v := range vars {
		s, _ := v.(string)
		out = append(out, override{name: name, value: s})
	}
	slices.SortFunc(out, func(a, b override) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// applyEnv writes each override into the document tree root, recording
// which variable set or created which path.
func (s *source) applyEnv(root map[string]any, ovs []override) errorList {
	var errs errorList
	for _, o := range ovs {
		if e := s.applyOne(root, o); e != nil {
			errs.add(e)
		}
	}
	return errs
}

func (s *source) applyOne(root map[string]any, o override) *Error {
	fail := func(path string, format string, args ...any) *Error {
		return &Error{Source: s.name, Env: o.name, Path: path, Err: fmt.Errorf(format, args...)}
	}
	rest := strings.TrimPrefix(o.name, EnvPrefix)
	if rest == "" {
		return fail("", "names no key: write %sNAMESPACE, %sLAYERS__0__TTL, ...", EnvPrefix, EnvPrefix)
	}
	keys := strings.Split(strings.ToLower(rest), envSeparator)
	if slices.Contains(keys, "") {
		return fail("", "empty key: separate keys with exactly two underscores, as in %sDEGRADATION__RETRY_AFTER", EnvPrefix)
	}

	var node any = root
	path := ""
	for i, key := range keys {
		last := i == len(keys)-1
		var childPath string
		var get func() any
		var set func(any)

		switch n := node.(type) {
		case map[string]any:
			childPath = joinPath(path, key)
			get = func() any { return n[key] }
			set = func(v any) { n[key] = v }
		case []any:
			idx, err := strconv.Atoi(key)
			if err != nil || idx < 0 || strconv.Itoa(idx) != key {
				return fail(path, "is a list: expected an index such as 0 in place of %q", strings.ToUpper(key))
			}
			if idx >= len(n) {
				if len(n) == 0 {
					return fail(indexPath(path, idx), "no such entry: %s is empty", path)
				}
				return fail(indexPath(path, idx), "no such entry: %s has %d (indexes 0 to %d)", path, len(n), len(n)-1)
			}
			childPath = indexPath(path, idx)
			get = func() any { return n[idx] }
			set = func(v any) { n[idx] = v }
		default:
			// Unreachable: only maps and lists are descended into.
			return fail(path, "cannot hold keys")
		}

		child := get()
		if last {
			if holdsBlocks(child) {
				return fail(childPath, "is a block of keys and cannot be set from one variable; set each key with %s__<KEY>", o.name)
			}
			set(envValue{name: o.name, value: o.value})
			s.env[childPath] = o.name
			return nil
		}
		switch child.(type) {
		case map[string]any, []any:
		case nil:
			if path == "" && key == "layers" {
				return fail("layers", "no such entry: the document defines no layers")
			}
			child = map[string]any{}
			set(child)
			s.env[childPath] = o.name
		default:
			return fail(childPath, "is a single value, not a block of keys")
		}
		node, path = child, childPath
	}
	return nil
}

// holdsBlocks reports whether v is a block of keys or a list of them, which
// one variable cannot replace. A list of plain values can be replaced: the
// variable's value is then split at commas.
func holdsBlocks(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return true
	case []any:
		return slices.ContainsFunc(x, func(e any) bool {
			_, ok := e.(map[string]any)
			return ok
		})
	}
	return false
}
