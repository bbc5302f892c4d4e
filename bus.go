package layercache

import (
	"context"

	"github.com/layercache/layercache/driver"
)

// publish tells the other instances about a change. It is called only after
// the shared layers were written, so it must not be skipped because the
// caller left meanwhile: it runs detached from the caller's cancellation,
// under the degradation timeout.
func (c *Cache) publish(ctx context.Context, m driver.Message) error {
	if c.bus == nil {
		return nil
	}
	m.Origin = c.id
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.publishTimeout)
	err := c.bus.Publish(pctx, m)
	cancel()
	c.event(ctx, Event{Kind: EventBusOut, Op: m.Op.String(), Err: err})
	if err != nil {
		c.busErrors.Add(1)
		return &LayerError{Op: "publish", Layer: "bus", Err: err}
	}
	c.busOut.Add(1)
	return nil
}

// onMessage applies another instance's change to this instance's private
// layers (in-process memory, local disk) and to loads in flight, so that
// none of them keeps or writes an older value. Shared layers were changed
// by the sender itself.
func (c *Cache) onMessage(m driver.Message) {
	if m.Origin == c.id {
		return
	}
	ctx := context.Background()
	c.event(ctx, Event{Kind: EventBusIn, Op: m.Op.String()})
	// Counted once applied, so that whoever sees the count sees the effect.
	defer c.busIn.Add(1)
	defer c.event(ctx, Event{Kind: EventInvalidation, Op: m.Op.String()})
	if m.Op == driver.OpInvalidate {
		if m.Tags = c.takeRotations(m.Tags); len(m.Tags) == 0 {
			return
		}
	}
	if err := c.applyRemote(ctx, m); err != nil {
		c.logger.Debug("layercache: a private layer failed to apply another instance's change", "op", m.Op, "origin", m.Origin, "err", err)
	}
}

// onBusReset runs on every (re)subscription: messages may have been missed
// while the bus was away, so nothing held in process can be trusted. A
// private persistent layer (disk) is kept: it exists to stay warm across
// restarts, and its entries' TTL bounds how stale they can be.
func (c *Cache) onBusReset() {
	c.gens.forget() // rotations may have been missed too
	var inProcess []*layer
	for _, l := range c.layers {
		if l.inProcess {
			inProcess = append(inProcess, l)
		}
	}
	c.drop(inProcess)
	c.event(context.Background(), Event{Kind: EventInvalidation, Op: "reset"})
}

// takeRotations applies the namespace rotations among an invalidation's
// tags and returns the other tags.
func (c *Cache) takeRotations(tags []string) []string {
	rest := tags[:0:0]
	for _, t := range tags {
		if path, gen, ok := parseGenerationTag(t); ok {
			c.gens.advance(path, gen)
			continue
		}
		rest = append(rest, t)
	}
	return rest
}

// drop empties layers and invalidates every load in flight.
func (c *Cache) drop(layers []*layer) {
	c.undoWrites(c.flights.invalidateAll())
	for _, l := range layers {
		if err := l.clear(context.Background()); err != nil {
			c.logger.Warn("layercache: cannot drop entries", "layer", l.name, "err", err)
		}
	}
}
