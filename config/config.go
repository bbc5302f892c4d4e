package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strings"
	"time"
	"unicode"

	kyaml "github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"
)

// Config is a parsed, validated configuration: the stack of layers in
// lookup order, the optional bus and coordinator, and the cache-wide
// settings. The driver blocks are kept undecoded; each driver decodes its
// own.
type Config struct {
	// Namespace prefixes every key the cache stores in a shared layer, so
	// that applications sharing a Redis do not see each other's entries.
	// Default: "" (no prefix).
	Namespace string

	// Layers are the layers in lookup order, fastest first. At least one.
	Layers []*Block

	// Bus is the invalidation bus's block, or nil when the configuration
	// has none (instances then do not hear of each other's writes).
	Bus *Block

	// Singleflight is the cross-process coordinator's block, or nil when
	// the configuration has none (loads are then deduplicated only within
	// a process).
	Singleflight *Block

	// Degradation says how the cache reacts to a slow or failing layer.
	Degradation Degradation

	// Defaults are the per-entry settings used when a call gives none.
	Defaults Defaults

	src *source // nil for a Config built in code
}

// Degradation is the "degradation" block: the timeout and circuit breaker
// that keep a slow or dead remote layer from slowing the cache down.
type Degradation struct {
	// Timeout bounds every operation on a remote layer, bus or
	// coordinator; one that takes longer counts as a failure. Must be
	// positive. Default: 100ms.
	Timeout time.Duration `yaml:"timeout"`

	// RetryAfter is how long a layer that has failed is skipped before a
	// single probe is let through to see whether it is back. Must be
	// positive. Default: 10s.
	RetryAfter time.Duration `yaml:"retry_after"`

	// FailureThreshold is how many consecutive failures take a layer out
	// of use. At least 1. Default: 5.
	FailureThreshold int `yaml:"failure_threshold"`

	// StartDegraded treats every remote layer as failed from the start
	// until a probe succeeds, so that a process started while Redis is
	// down serves from its memory layer and loader at once instead of
	// waiting on timeouts first. Default: false.
	StartDegraded bool `yaml:"start_degraded"`
}

// Defaults is the "defaults" block: the per-entry settings a call to the
// cache uses unless it gives its own.
type Defaults struct {
	// TTL is how long an entry lives. 0 means entries carry no expiry of
	// their own, so each layer's ttl alone bounds them. Default: 5m.
	TTL time.Duration `yaml:"ttl"`

	// NegativeTTL is how long a cached absence (a loader returning
	// layercache.ErrNotFound) lives. 0 means absences are not cached.
	// Default: 30s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`

	// StaleWhileRevalidate is how long after its TTL an entry may still be
	// served while one background load refreshes it. 0 disables it.
	// Default: 0.
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`

	// StaleIfError is how long after its TTL an entry may still be served
	// when its loader fails. 0 disables it. Default: 0.
	StaleIfError time.Duration `yaml:"stale_if_error"`

	// Jitter spreads expiries: each TTL is shortened by a random fraction
	// of up to Jitter of itself, so entries written together do not all
	// expire together. From 0 (none) up to but not including 1.
	// Default: 0.
	Jitter float64 `yaml:"jitter"`
}

// defaultDegradation and defaultDefaults are the values of keys a
// document leaves out. An explicit value, zero included, replaces them.
var (
	defaultDegradation = Degradation{Timeout: 100 * time.Millisecond, RetryAfter: 10 * time.Second, FailureThreshold: 5}
	defaultDefaults    = Defaults{TTL: DefaultTTL, NegativeTTL: DefaultNegativeTTL}
)

// DefaultTTL and DefaultNegativeTTL are the entry lifetimes of every cache
// unless its configuration (the defaults block, or WithDefaults in code)
// says otherwise; stale windows and jitter are off by default. A cache
// built by layercache.New and one opened from a file that leaves the
// defaults block out behave the same.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultNegativeTTL = 30 * time.Second
)

// topKeys are the keys a document may have at its top level.
var topKeys = []string{"namespace", "layers", "bus", "singleflight", "degradation", "defaults"}

// Load reads the YAML file at path, applies the LAYERCACHE_* environment
// overrides and validates the result. A missing file is an error. Errors
// name path and, where they can, the line or the variable at fault.
func Load(path string) (*Config, error) {
	data, err := file.Provider(path).ReadBytes()
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{Source: path, Err: fmt.Errorf("cannot read the configuration file: %w", err)}
	}
	return parse(data, path, os.Environ)
}

// Parse is [Load] for a document already in memory: it parses data as
// YAML, applies the LAYERCACHE_* environment overrides and validates the
// result. source names the document in error messages, as a file's path
// would.
func Parse(data []byte, source string) (*Config, error) {
	return parse(data, source, os.Environ)
}

// parse is Parse with the environment given, so that tests need not touch
// the process's.
func parse(data []byte, name string, environ func() []string) (*Config, error) {
	s := &source{name: name, lines: make(map[string]int), env: make(map[string]string)}

	// The node tree is read only for the lines of keys; the values come
	// through koanf below. Both use the same YAML parser.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, s.yamlError(err)
	}
	if len(doc.Content) > 0 {
		top := doc.Content[0]
		if top.Kind != yaml.MappingNode && !(top.Kind == yaml.ScalarNode && top.Tag == "!!null") {
			return nil, &Error{Source: name, Line: top.Line, Err: errors.New("the document must be a block of keys (namespace, layers, ...)")}
		}
		keyLines(top, "", s.lines)
	}

	k := koanf.New(".")
	if err := k.Load(bytesProvider(data), kyaml.Parser()); err != nil {
		return nil, s.yamlError(err)
	}
	raw := k.Raw()

	ovs, err := readEnv(environ)
	if err != nil {
		return nil, err
	}
	if errs := s.applyEnv(raw, ovs); len(errs) > 0 {
		return nil, errs.err()
	}
	c, errs := s.build(raw)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// build turns the document tree into a Config, checking the top level and
// decoding the blocks the package owns. Driver blocks are checked only for
// their shape here; their drivers decode them.
func (s *source) build(raw map[string]any) (*Config, errorList) {
	c := &Config{Degradation: defaultDegradation, Defaults: defaultDefaults, src: s}
	var errs errorList
	for _, key := range sortedKeys(raw) {
		v := raw[key]
		switch key {
		case "namespace":
			switch x := v.(type) {
			case nil:
			case string:
				c.Namespace = x
			case envValue:
				c.Namespace = x.value
			default:
				errs.add(s.errorf(key, "expected a string, got %s", describe(v, false)))
			}
		case "layers":
			switch x := v.(type) {
			case nil:
			case []any:
				for i, e := range x {
					b, err := s.block(e, indexPath(key, i))
					if err != nil {
						errs.add(err)
						continue
					}
					c.Layers = append(c.Layers, b)
				}
			default:
				errs.add(s.errorf(key, "expected a list of blocks, each with a driver key, got %s", describe(v, false)))
			}
		case "bus", "singleflight":
			if v == nil {
				continue
			}
			b, err := s.block(v, key)
			if err != nil {
				errs.add(err)
				continue
			}
			if key == "bus" {
				c.Bus = b
			} else {
				c.Singleflight = b
			}
		case "degradation":
			errs.add(s.decode(v, &c.Degradation, key)...)
		case "defaults":
			errs.add(s.decode(v, &c.Defaults, key)...)
		default:
			if strings.HasPrefix(key, "x-") {
				continue // a place for anchors, as in Compose files
			}
			errs.add(s.unknownKey(key, key, topKeys))
		}
	}
	for _, b := range c.blocks() {
		b.namespace = c.Namespace
	}
	return c, errs
}

// blocks returns every driver block of c.
func (c *Config) blocks() []*Block {
	bs := append([]*Block(nil), c.Layers...)
	for _, b := range []*Block{c.Bus, c.Singleflight} {
		if b != nil {
			bs = append(bs, b)
		}
	}
	return bs
}

// block makes a Block of the value at path, which must be a block of keys.
// A missing driver key is left for Validate to report.
func (s *source) block(v any, path string) (*Block, *Error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, s.errorf(path, "expected a block of keys with a driver key, got %s", describe(v, false))
	}
	b := &Block{raw: make(map[string]any, len(m)), path: path, src: s}
	for k, val := range m {
		if k != "driver" {
			b.raw[k] = val
			continue
		}
		switch x := val.(type) {
		case nil:
		case string:
			b.Driver = x
		case envValue:
			b.Driver = x.value
		default:
			return nil, s.errorf(joinPath(path, k), "expected a driver name such as \"redis\", got %s", describe(val, false))
		}
	}
	return b, nil
}

// Validate checks a Config as [Load] does after decoding: at least one
// layer, a driver named in every block, positive timeouts and a failure
// threshold of at least 1, no negative duration, a jitter in [0, 1), and
// a namespace without spaces or control characters. It does not check
// that the drivers exist; opening the cache does.
func (c *Config) Validate() error {
	s := c.src
	var errs errorList
	if strings.ContainsFunc(c.Namespace, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		errs.add(s.errorf("namespace", "must not contain spaces or control characters, got %q", c.Namespace))
	}

	if len(c.Layers) == 0 {
		errs.add(s.errorf("layers", "no layers: list at least one, such as \"- driver: memory\""))
	}
	for i, b := range c.Layers {
		path := indexPath("layers", i)
		if b == nil {
			errs.add(s.errorf(path, "is nil"))
			continue
		}
		if b.path != "" {
			path = b.path
		}
		if b.Driver == "" {
			errs.add(s.noDriver(path))
		}
	}
	for _, kb := range []struct {
		path string
		b    *Block
	}{{"bus", c.Bus}, {"singleflight", c.Singleflight}} {
		if kb.b != nil && kb.b.Driver == "" {
			errs.add(s.noDriver(kb.path))
		}
	}

	d := c.Degradation
	if d.Timeout <= 0 {
		errs.add(s.errorf("degradation.timeout", "must be positive, got %v", d.Timeout))
	}
	if d.RetryAfter <= 0 {
		errs.add(s.errorf("degradation.retry_after", "must be positive, got %v", d.RetryAfter))
	}
	if d.FailureThreshold < 1 {
		errs.add(s.errorf("degradation.failure_threshold", "must be at least 1, got %d", d.FailureThreshold))
	}

	f := c.Defaults
	for _, kd := range []struct {
		key string
		d   time.Duration
	}{
		{"ttl", f.TTL},
		{"negative_ttl", f.NegativeTTL},
		{"stale_while_revalidate", f.StaleWhileRevalidate},
		{"stale_if_error", f.StaleIfError},
	} {
		if kd.d < 0 {
			errs.add(s.wrap("defaults."+kd.key, errNegative(kd.d)))
		}
	}
	if !(f.Jitter >= 0 && f.Jitter < 1) || math.IsNaN(f.Jitter) {
		errs.add(s.errorf("defaults.jitter", "must be at least 0 and less than 1, got %v", f.Jitter))
	}
	return errs.err()
}

// noDriver reports a block at path whose driver is not named, at its
// driver key if it has an empty one.
func (s *source) noDriver(path string) *Error {
	if p := joinPath(path, "driver"); s.has(p) {
		return s.errorf(p, "is empty: name a registered driver, such as \"memory\" or \"redis\"")
	}
	return s.errorf(path, "no driver key: name a registered driver, such as \"driver: memory\"")
}

// has reports whether the document or the environment gave path a value.
func (s *source) has(path string) bool {
	if s == nil {
		return false
	}
	_, inEnv := s.env[path]
	_, inDoc := s.lines[path]
	return inEnv || inDoc
}

// bytesProvider hands a document already in memory to koanf.
type bytesProvider []byte

func (b bytesProvider) ReadBytes() ([]byte, error) { return b, nil }

func (b bytesProvider) Read() (map[string]any, error) {
	return nil, errors.New("layercache/config: bytesProvider supports ReadBytes only")
}

// keyLines records the line of every key under n, by path. Aliases and
// merge keys are not followed: a key that arrives through one is placed at
// the line of the key that refers to it.
func keyLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				continue
			}
			p := joinPath(path, k.Value)
			lines[p] = k.Line
			keyLines(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := indexPath(path, i)
			lines[p] = e.Line
			keyLines(e, p, lines)
		}
	}
}
