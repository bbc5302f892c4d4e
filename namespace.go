package layercache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/layercache/layercache/driver"
)

// scope is one level of namespace views.
type scope struct {
	parent *scope
	name   string
	// path names the scope's generation counter: the names of its
	// enclosing scopes and its own, each length-prefixed so that no name
	// can pass for another.
	path string
}

// Namespace returns a view of the cache in which every key and tag lives
// under name: it shares the cache's layers, bus, single-flight and
// counters, and every function that takes a *Cache works on it. Views nest.
//
// A namespace has a generation, part of each of its keys: [Cache.Rotate]
// moves it on, which makes every entry of the namespace unreachable on
// every instance at once, without scanning a key (the old entries expire
// on their own). The generation lives in the first shared layer that keeps
// counters (Redis), is cached in process, and travels over the bus.
//
// Clear on a view rotates it. Close on a view does nothing: close the
// cache itself.
func (c *Cache) Namespace(name string) *Cache {
	s := &scope{parent: c.scope, name: name, path: lengthPrefixed(name)}
	if c.scope != nil {
		s.path = c.scope.path + "/" + s.path
	}
	return &Cache{core: c.core, scope: s}
}

func lengthPrefixed(name string) string { return strconv.Itoa(len(name)) + ":" + name }

// ErrNotNamespace is returned by [Cache.Rotate] on a cache that is not a
// namespace view.
var ErrNotNamespace = errors.New("layercache: Rotate needs a namespace view (Cache.Namespace)")

// Rotate moves the view's namespace to its next generation: every entry
// written in it so far becomes unreachable, on this instance at once and on
// the others as soon as they hear of it over the bus. It fails, changing
// nothing, when the shared layer that keeps generations cannot be reached.
func (c *Cache) Rotate(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.scope == nil {
		return ErrNotNamespace
	}
	path := c.scope.path
	var next uint64
	if l, g := c.gens.keeper(); l != nil {
		err := l.do(ctx, "generation", func(ctx context.Context) error {
			var err error
			next, err = g.NextGeneration(ctx, path)
			return err
		})
		if err != nil {
			return err
		}
	} else {
		next = c.gens.current(path) + 1
	}
	c.gens.advance(path, next)
	c.rotations.Add(1)
	return c.publish(ctx, driver.Message{Op: driver.OpInvalidate, Tags: []string{generationTag(path, next)}})
}

// scopedKey is key as stored: the view's namespaces, with their
// generations, before it.
func (c *Cache) scopedKey(ctx context.Context, key string) string {
	return c.scopePrefix(ctx) + key
}

// scopedAll returns names (keys or tags) as stored; names itself outside a
// view.
func (c *Cache) scopedAll(ctx context.Context, names []string) []string {
	if c.scope == nil || len(names) == 0 {
		return names
	}
	prefix := c.scopePrefix(ctx)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// scopePrefix is "<len>:<name>@<generation>/" for each enclosing namespace,
// outermost first.
func (c *Cache) scopePrefix(ctx context.Context) string {
	var chain []*scope
	for s := c.scope; s != nil; s = s.parent {
		chain = append(chain, s)
	}
	var b strings.Builder
	for i := len(chain) - 1; i >= 0; i-- {
		s := chain[i]
		b.WriteString(lengthPrefixed(s.name))
		b.WriteByte('@')
		b.WriteString(strconv.FormatUint(c.gens.get(ctx, s.path), 36))
		b.WriteByte('/')
	}
	return b.String()
}

// generationTagPrefix marks the bus message of a rotation: an invalidation
// of a tag no entry carries, which every instance understands as "this
// namespace moved to this generation".
const generationTagPrefix = "#generation:"

func generationTag(path string, gen uint64) string {
	return generationTagPrefix + strconv.FormatUint(gen, 10) + ":" + path
}

// parseGenerationTag reads a rotation's tag.
func parseGenerationTag(tag string) (path string, gen uint64, ok bool) {
	rest, found := strings.CutPrefix(tag, generationTagPrefix)
	if !found {
		return "", 0, false
	}
	num, path, found := strings.Cut(rest, ":")
	if !found {
		return "", 0, false
	}
	gen, err := strconv.ParseUint(num, 10, 64)
	return path, gen, err == nil
}

// generations caches the generation of each namespace this instance used.
type generations struct {
	layers func() (*layer, driver.Generations)

	mu sync.RWMutex
	m  map[string]generation
}

type generation struct {
	value uint64
	// guess marks a generation made up because the keeper could not be
	// read: a value no instance uses, so the view misses rather than
	// serve entries of a generation that may be over, until retryAt.
	guess   bool
	retryAt time.Time
}

// generationRetry is how long a made-up generation is used before the
// keeper is asked again.
const generationRetry = time.Second

func newGenerations(layers []*layer) *generations {
	g := &generations{m: make(map[string]generation)}
	var keeper *layer
	var gl driver.Generations
	for _, l := range layers {
		if k, ok := l.Layer.(driver.Generations); ok && l.shared {
			keeper, gl = l, k
			break
		}
	}
	g.layers = func() (*layer, driver.Generations) { return keeper, gl }
	return g
}

// keeper is the shared layer that keeps generations, or nil when the stack
// has none (generations are then this process's own).
func (g *generations) keeper() (*layer, driver.Generations) { return g.layers() }

// current is the cached generation of path, 0 when unknown.
func (g *generations) current(path string) uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m[path].value
}

// get returns path's generation, reading it from the keeper the first
// time.
func (g *generations) get(ctx context.Context, path string) uint64 {
	g.mu.RLock()
	gen, ok := g.m[path]
	g.mu.RUnlock()
	if ok && (!gen.guess || time.Now().Before(gen.retryAt)) {
		return gen.value
	}
	l, keeper := g.keeper()
	if l == nil {
		g.advance(path, 0)
		return g.current(path)
	}
	var read uint64
	err := l.do(ctx, "generation", func(ctx context.Context) error {
		var err error
		read, err = keeper.Generation(ctx, path)
		return err
	})
	if err != nil {
		var b [8]byte
		_, _ = rand.Read(b[:])
		guess := generation{value: binary.LittleEndian.Uint64(b[:]) | 1<<63, guess: true, retryAt: time.Now().Add(generationRetry)}
		g.mu.Lock()
		defer g.mu.Unlock()
		if cur, ok := g.m[path]; ok && !cur.guess {
			return cur.value // learnt meanwhile
		}
		g.m[path] = guess
		return guess.value
	}
	g.advance(path, read)
	return g.current(path)
}

// advance records that path is at generation gen or later.
func (g *generations) advance(path string, gen uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur, ok := g.m[path]; ok && !cur.guess && cur.value >= gen {
		return
	}
	g.m[path] = generation{value: gen}
}

// forget drops every cached generation: after a bus reset, rotations may
// have been missed.
func (g *generations) forget() {
	g.mu.Lock()
	clear(g.m)
	g.mu.Unlock()
}
