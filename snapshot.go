package layercache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/snapshot"
)

// Export writes the entries of the cache's first layer that can list them
// (the in-process layer, usually) to w as a snapshot: a versioned,
// checksummed stream that keeps each entry's value, freshness, expiry and
// tags. It returns how many entries it wrote. Keys are written as stored,
// so a namespace view exports the whole cache. Use ExportLayer to choose
// the layer.
func (c *Cache) Export(ctx context.Context, w io.Writer) (int, error) {
	for _, l := range c.layers {
		if _, ok := l.Layer.(driver.Ranger); ok {
			return c.export(ctx, w, l)
		}
	}
	return 0, errors.New("layercache: no layer of this cache can list its entries")
}

// ExportLayer is [Cache.Export] from the layer with the given name (as in
// [LayerStats]).
func (c *Cache) ExportLayer(ctx context.Context, w io.Writer, layer string) (int, error) {
	for _, l := range c.layers {
		if l.name == layer {
			return c.export(ctx, w, l)
		}
	}
	return 0, fmt.Errorf("layercache: no layer named %q", layer)
}

func (c *Cache) export(ctx context.Context, w io.Writer, l *layer) (int, error) {
	r, ok := l.Layer.(driver.Ranger)
	if !ok {
		return 0, fmt.Errorf("layercache: layer %s cannot list its entries", l.name)
	}
	sw := snapshot.NewWriter(w)
	var werr error
	err := r.Range(ctx, func(key string, e *driver.Entry) bool {
		wire := e
		if l.inProcess && e.Payload == nil && !e.Negative {
			payload, codec, err := encodeValue(c.codec, e.Value)
			if err != nil {
				werr = fmt.Errorf("layercache: export %q: %w", key, err)
				return false
			}
			wire = &driver.Entry{Payload: payload, Codec: codec, StaleAt: e.StaleAt, ExpiresAt: e.ExpiresAt, Tags: e.Tags}
		}
		werr = sw.Write(key, wire)
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return sw.Count(), err
	}
	return sw.Count(), sw.Close()
}

// ImportLimits bound what [Cache.Import] accepts; the zero value is
// snapshot's defaults (256 MiB).
type ImportLimits = snapshot.Limits

// Import reads a snapshot written by [Cache.Export] and stores its entries
// in every layer, keeping their expiry (an entry whose time has passed is
// skipped) and tags, then tells the other instances. The whole stream is
// checked first: a snapshot that is truncated, altered, too large or of
// another version is refused with an error and changes nothing. It returns
// how many entries it stored.
func (c *Cache) Import(ctx context.Context, r io.Reader, limits ...ImportLimits) (int, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	var lim ImportLimits
	if len(limits) > 0 {
		lim = limits[0]
	}
	var keys []string
	var wires []*driver.Entry
	now := time.Now().UnixNano()
	err := snapshot.Read(r, lim, func(key string, e *driver.Entry) error {
		if e.Expired(now) {
			return nil
		}
		keys = append(keys, key)
		wires = append(wires, e)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("layercache: import: %w", err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	// In-process layers hold the entries encoded until a read decodes them
	// into the type it asks for.
	mems := make([]*driver.Entry, len(wires))
	for i, e := range wires {
		cp := *e
		cp.Value = nil
		mems[i] = &cp
	}
	err = c.apply(ctx,
		func() { c.flights.invalidateKeys(keys) },
		func(l *layer) error {
			if l.inProcess {
				return l.setMany(ctx, keys, mems)
			}
			return l.setMany(ctx, keys, wires)
		},
		driver.Message{Op: driver.OpSet, Keys: keys})
	return len(keys), err
}
