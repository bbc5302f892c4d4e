package layercache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
)

// Open builds a cache from a YAML file, with LAYERCACHE_* environment
// variables overriding its values (see package config for the format). Each
// layer, the bus and the coordinator are opened by the driver registered
// under their "driver" key, so the program must import the drivers it uses:
//
//	import _ "github.com/layercache/layercache/drivers/redis"
//
// opts are applied after the file's settings and win over them: a
// namespace given with [WithNamespace] is the one the layers are opened with
// (the Redis key prefix and bus channel follow it), and a bus or coordinator
// given with [WithBus] or [WithCoordinator] replaces the file's, which is
// then not opened. If any step fails, everything opened before it is closed
// again.
func Open(path string, opts ...Option) (*Cache, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return OpenConfig(cfg, opts...)
}

// OpenConfig is [Open] for a configuration already loaded or built in code.
func OpenConfig(cfg *config.Config, opts ...Option) (c *Cache, err error) {
	if cfg == nil {
		return nil, errors.New("layercache: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	// Options given in code win over the file: a namespace set there is the
	// one the drivers are opened with, and a bus or coordinator given there
	// replaces the file's instead of being opened beside it.
	var code settings
	for _, opt := range opts {
		opt(&code)
	}
	namespace := cfg.Namespace
	if code.namespace != "" {
		namespace = code.namespace
	}

	// Everything opened so far, closed again if a later step fails.
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	layers := make([]driver.Layer, 0, len(cfg.Layers))
	var unreachable []int
	for i, b := range cfg.Layers {
		d, err := lookupDriver[driver.Driver](b, "layer")
		if err != nil {
			return nil, err
		}
		l, err := d.OpenLayer(ctx, scoped{b, namespace})
		if err != nil {
			return nil, fmt.Errorf("layercache: %s (driver %q): %w", b.Path(), b.Driver, err)
		}
		closers = append(closers, l.Close)
		layers = append(layers, l)
		if p, ok := l.(driver.Pinger); ok {
			pctx, cancel := context.WithTimeout(ctx, cfg.Degradation.Timeout*10)
			perr := p.Ping(pctx)
			cancel()
			if perr != nil {
				if !cfg.Degradation.StartDegraded {
					return nil, fmt.Errorf("layercache: %s (driver %q) is unreachable (set degradation.start_degraded to start without it): %w", b.Path(), b.Driver, perr)
				}
				unreachable = append(unreachable, i)
			}
		}
	}
	stack := driver.Stack{Namespace: namespace, Layers: layers}

	all := []Option{
		WithNamespace(namespace),
		WithDegradation(Degradation{
			Timeout:          cfg.Degradation.Timeout,
			FailureThreshold: cfg.Degradation.FailureThreshold,
			RetryAfter:       cfg.Degradation.RetryAfter,
		}),
		WithDefaults(
			WithTTL(cfg.Defaults.TTL),
			WithNegativeTTL(cfg.Defaults.NegativeTTL),
			WithStaleWhileRevalidate(cfg.Defaults.StaleWhileRevalidate),
			WithStaleIfError(cfg.Defaults.StaleIfError),
			WithJitter(cfg.Defaults.Jitter),
		),
	}
	if b := cfg.Bus; b != nil && code.bus == nil {
		d, err := lookupDriver[driver.BusDriver](b, "bus")
		if err != nil {
			return nil, err
		}
		bus, err := d.OpenBus(ctx, scoped{b, namespace}, stack)
		if err != nil {
			return nil, fmt.Errorf("layercache: %s (driver %q): %w", b.Path(), b.Driver, err)
		}
		closers = append(closers, bus.Close)
		all = append(all, WithBus(bus))
	}
	if b := cfg.Singleflight; b != nil && code.coordinator == nil {
		d, err := lookupDriver[driver.CoordinatorDriver](b, "singleflight")
		if err != nil {
			return nil, err
		}
		co, err := d.OpenCoordinator(ctx, scoped{b, namespace}, stack)
		if err != nil {
			return nil, fmt.Errorf("layercache: %s (driver %q): %w", b.Path(), b.Driver, err)
		}
		closers = append(closers, co.Close)
		all = append(all, WithCoordinator(co))
	}

	c, err = New(layers, append(all, opts...)...)
	if err != nil {
		return nil, err
	}
	for _, i := range unreachable {
		if c.layers[i].breaker == nil { // an in-process layer is never skipped
			continue
		}
		c.layers[i].breaker.trip()
		c.event(ctx, Event{Kind: EventBreakerOpen, Layer: c.layers[i].name})
		c.logger.Warn("layercache: starting without an unreachable layer", "layer", cfg.Layers[i].Path(), "driver", cfg.Layers[i].Driver)
	}
	return c, nil
}

// scoped hands a block to its driver with the namespace of the config being
// opened, which code may have changed since the file was read.
type scoped struct {
	*config.Block
	namespace string
}

func (s scoped) Namespace() string { return s.namespace }

// lookupDriver finds the driver a block names and checks that it provides
// what the block needs (a layer, a bus or a coordinator).
func lookupDriver[D any](b *config.Block, role string) (D, error) {
	var zero D
	d, ok := driver.Lookup(b.Driver)
	if !ok {
		return zero, unknownDriverError(b, role)
	}
	typed, ok := d.(D)
	if !ok {
		return zero, fmt.Errorf("layercache: %s: driver %q cannot be used as a %s", b.Path(), b.Driver, role)
	}
	return typed, nil
}

// shippedDrivers are the drivers in this module, for the hint in an unknown
// driver error.
var shippedDrivers = []string{"disk", "memcached", "memory", "redis"}

func unknownDriverError(b *config.Block, role string) error {
	registered := "none"
	if names := driver.Drivers(); len(names) > 0 {
		registered = strings.Join(names, ", ")
	}
	hint := "import the package that registers it"
	if slices.Contains(shippedDrivers, b.Driver) {
		hint = fmt.Sprintf(`add import _ "github.com/layercache/layercache/drivers/%s"`, b.Driver)
	}
	return fmt.Errorf("layercache: %s: unknown %s driver %q (forgotten import?): %s; registered drivers: %s",
		b.Path(), role, b.Driver, hint, registered)
}
