package driver

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Config is one driver's block of a configuration file, handed to the
// driver to decode into its own options struct.
type Config interface {
	// Decode decodes the block into v, a pointer to a struct whose fields
	// carry `yaml` tags. It is strict: an unknown key, a wrong type or an
	// impossible value is an error that names the key's full path.
	Decode(v any) error

	// Path is where the block sits in the file, such as "layers[1]", for
	// the driver's own error messages.
	Path() string

	// Namespace is the cache's namespace ("" when none is set). Drivers of
	// shared layers derive their default key prefix from it, and buses and
	// coordinators their channel and lock names.
	Namespace() string
}

// Driver opens layers from configuration blocks. A driver that can also
// carry invalidation messages or coordinate loads implements [BusDriver] or
// [CoordinatorDriver].
type Driver interface {
	OpenLayer(ctx context.Context, cfg Config) (Layer, error)
}

// Stack is what a bus or coordinator driver is told about the cache it is
// opened for.
type Stack struct {
	// Namespace names the cache's keyspace; drivers name shared resources
	// (channels, lock keys) after it so that caches do not cross.
	Namespace string
	// Layers are the stack's layers, already open, so that a block without
	// an address of its own can share a layer's connection (see [Aser]).
	Layers []Layer
}

// BusDriver is implemented by drivers that provide an invalidation [Bus].
type BusDriver interface {
	OpenBus(ctx context.Context, cfg Config, s Stack) (Bus, error)
}

// CoordinatorDriver is implemented by drivers that provide a single-flight
// [Coordinator].
type CoordinatorDriver interface {
	OpenCoordinator(ctx context.Context, cfg Config, s Stack) (Coordinator, error)
}

var (
	registryMu sync.RWMutex
	registry   = make(map[string]any)
)

// Register makes a driver available by name. d implements at least one of
// [Driver], [BusDriver] and [CoordinatorDriver]. Register panics if it is
// called twice with the same name, if d is nil or if d implements none of
// them: these are programming errors, found at start-up.
func Register(name string, d any) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if d == nil {
		panic("layercache/driver: Register driver is nil")
	}
	_, isLayer := d.(Driver)
	_, isBus := d.(BusDriver)
	_, isCoord := d.(CoordinatorDriver)
	if !isLayer && !isBus && !isCoord {
		panic(fmt.Sprintf("layercache/driver: Register driver %q (%T) implements no driver interface", name, d))
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("layercache/driver: Register called twice for driver %q", name))
	}
	registry[name] = d
}

// Lookup returns the driver registered under name.
func Lookup(name string) (any, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	d, ok := registry[name]
	return d, ok
}

// Drivers returns the names of the registered drivers, sorted.
func Drivers() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
