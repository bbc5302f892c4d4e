package layercache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

// Cache is a stack of layers behind one API. Reads go through the layers in
// order and backfill the faster ones; misses run the loader once per key;
// writes and invalidations reach every layer and, through the bus, every
// instance.
//
// A Cache is safe for concurrent use. Create it with [New] or [Open] and
// release it with [Cache.Close]. [Cache.Namespace] returns views of it.
type Cache struct {
	*core
	// scope is the namespace of a view; nil for the cache itself.
	scope *scope
}

// core is what a cache and all its namespace views share.
type core struct {
	layers []*layer
	// l1 is the first layer when it is in-process: the hit path reads it
	// without going through the generic layer loop. l1mem is its driver
	// when that is the memory driver, which a bound loader's hit calls
	// directly (see Loader.hit).
	l1    *layer
	l1mem *memory.Layer

	codec        Codec
	clone        bool
	strictWrites bool
	defaults     entryOptions
	// plainHits says a fresh L1 hit has nothing to do but return its
	// value: no copy to make, no early refresh to consider, no read to
	// count or window to slide by default.
	plainHits bool
	// batchDepth is how many layers a batch read reads before it joins
	// the flights of the keys still missing: all of them, unless a hit in
	// a shared layer would be copied to a layer outside the process above
	// it, a background write that needs a call per key to guard it.
	// batchGuarded says a hit in those layers is copied to an in-process
	// layer above it, so the read needs a guard.
	batchDepth   int
	batchGuarded bool
	logger       *slog.Logger
	namespace    string
	id           string

	bus            driver.Bus
	publishTimeout time.Duration
	coordinator    driver.Coordinator
	observer       Observer // nil when none: every call site checks

	flights   *flights
	writeBack *writeBack
	journal   *journal
	origin    *origin
	frequency atomic.Pointer[frequency] // reads per key, for adaptive TTLs; made on first use
	gens      *generations

	loads, loadErrors, deduped counter
	staleServed, notFound      counter
	negativeHits               counter
	writeBackDropped           atomic.Uint64
	busIn, busOut, busErrors   atomic.Uint64
	sets, deletedKeys          atomic.Uint64
	invalidatedTags, clears    atomic.Uint64
	rotations, prefixes        atomic.Uint64
	backfills, refreshes       atomic.Uint64

	// statsBase is the snapshot ResetStats took: Stats counts from it.
	statsBase atomic.Pointer[statsBase]
	created   time.Time

	// background counts the refreshes of bound loaders running in the
	// background; bgMu orders starting one against Close waiting for
	// them.
	background sync.WaitGroup
	bgMu       sync.RWMutex
	bgClosed   bool

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New builds a cache over layers, fastest first. The cache owns the layers
// (and the bus and coordinator, if given) and closes them on Close; on error
// nothing is closed.
//
// Entries live [config.DefaultTTL] (5m) and absences [config.DefaultNegativeTTL]
// (30s) unless [WithDefaults] or the call's own options say otherwise; a
// cache opened from a file without a defaults block has the same.
func New(layers []driver.Layer, opts ...Option) (*Cache, error) {
	if len(layers) == 0 {
		return nil, errors.New("layercache: no layers")
	}
	cfg := settings{codec: JSON, namespace: "layercache", writeBack: 1024, journal: 10000}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.codec == nil {
		return nil, errors.New("layercache: nil codec")
	}
	if cfg.writeBack <= 0 {
		return nil, errors.New("layercache: write-back queue must hold at least one write")
	}
	if cfg.journal <= 0 {
		return nil, errors.New("layercache: invalidation journal must hold at least one change")
	}
	org, err := newOrigin(cfg.origin)
	if err != nil {
		return nil, err
	}
	if e, ok := cfg.observer.(interface{ Enabled() bool }); ok && !e.Enabled() {
		cfg.observer = nil // it would record nothing; keep the hit path bare
	}
	d := cfg.degradation.withDefaults()
	if d.Timeout < 0 || d.RetryAfter < 0 || d.FailureThreshold < 0 {
		return nil, errors.New("layercache: negative degradation setting")
	}
	defaults := entryOptions{ttl: config.DefaultTTL, negativeTTL: config.DefaultNegativeTTL}.with(cfg.defaults)
	if err := defaults.validate(); err != nil {
		return nil, err
	}
	c := &Cache{core: &core{
		codec:          cfg.codec,
		clone:          cfg.clone,
		strictWrites:   cfg.strictWrites,
		defaults:       defaults,
		logger:         cfg.logger,
		namespace:      cfg.namespace,
		id:             newInstanceID(),
		bus:            cfg.bus,
		publishTimeout: d.Timeout,
		coordinator:    cfg.coordinator,
		observer:       cfg.observer,
		flights:        newFlights(),
		loads:          newCounter(),
		loadErrors:     newCounter(),
		deduped:        newCounter(),
		staleServed:    newCounter(),
		notFound:       newCounter(),
		negativeHits:   newCounter(),
		created:        time.Now(),
		origin:         org,
	}}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	for i, l := range layers {
		if l == nil {
			return nil, errors.New("layercache: nil layer")
		}
		c.layers = append(c.layers, newLayer(l, i, d, cfg.observer))
	}
	if c.layers[0].inProcess {
		c.l1 = c.layers[0]
		c.l1mem, _ = layers[0].(*memory.Layer)
	}
	c.plainHits = !c.clone && defaults.earlyRefresh == 0 && defaults.adaptiveMax == 0 && defaults.slidingIdle == 0
	c.batchDepth = len(c.layers)
	remoteAbove, inProcessAbove := false, false
	for i, l := range c.layers {
		if l.shared && remoteAbove {
			c.batchDepth = i
			break
		}
		c.batchGuarded = c.batchGuarded || inProcessAbove
		remoteAbove = remoteAbove || !l.inProcess
		inProcessAbove = inProcessAbove || l.inProcess
	}
	c.journal = newJournal(cfg.journal)
	c.gens = newGenerations(c.layers)
	for _, l := range c.layers {
		l.recovered = c.journal.poke
	}
	c.writeBack = newWriteBack(cfg.writeBack, c.runWriteJob)
	if c.bus != nil {
		if err := c.bus.Subscribe(context.Background(), c.onMessage, c.onBusReset); err != nil {
			c.writeBack.close()
			return nil, err
		}
	}
	go c.runJournal(min(max(d.RetryAfter/4, 50*time.Millisecond), time.Second))
	return c, nil
}

func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is this instance's id on the bus.
func (c *Cache) ID() string { return c.id }

// Close closes the bus, waits for background writes, then closes the
// coordinator and every layer, and returns their errors joined. Every goroutine the
// cache started has ended when Close returns. Calls after Close return
// [ErrClosed]; Close itself may be called more than once.
func (c *Cache) Close() error {
	if c.scope != nil {
		return nil // a view: the cache itself owns what it uses
	}
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		var errs []error
		// Background refreshes end under their timeouts and may still
		// write; then failed invalidations get a last chance while layers
		// and bus are open.
		c.bgMu.Lock()
		c.bgClosed = true
		c.bgMu.Unlock()
		c.background.Wait()
		c.stopJournal()
		// The bus first: its messages may queue undo writes.
		if c.bus != nil {
			errs = append(errs, c.bus.Close())
		}
		c.writeBack.close()
		if c.coordinator != nil {
			errs = append(errs, c.coordinator.Close())
		}
		for _, l := range c.layers {
			errs = append(errs, l.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// privateLayers are the layers only this instance uses: what another
// instance changes must be dropped from them.
func (c *Cache) privateLayers() []*layer {
	var out []*layer
	for _, l := range c.layers {
		if !l.shared {
			out = append(out, l)
		}
	}
	return out
}

// event reports e to the observer, if there is one.
func (c *Cache) event(ctx context.Context, e Event) {
	if c.observer != nil {
		c.observer.Event(ctx, e)
	}
}

// begin and finish bracket an operation for the observer; without one they
// cost a nil check.
func (c *Cache) begin(ctx context.Context, op Operation) context.Context {
	if c.observer == nil {
		return ctx
	}
	return c.observer.Begin(ctx, op)
}

func (c *Cache) finish(ctx context.Context, op Operation, out Outcome) {
	if c.observer != nil {
		c.observer.Finish(ctx, op, out)
	}
}

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}
