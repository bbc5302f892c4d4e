package layercache

import (
	"context"
	"fmt"
	"time"
)

// LayerEntry is what one layer holds under a key, as [Cache.Inspect]
// reports it.
type LayerEntry struct {
	Layer    string
	Present  bool
	Fresh    bool          // present and not yet stale
	Negative bool          // a cached absence
	TTL      time.Duration // until the layer drops the entry; 0 when it has no expiry
	StaleIn  time.Duration // until the entry goes stale; 0 when it is stale or never goes stale
	Tags     []string
	Size     int    // bytes of the encoded value, in layers outside the process
	Codec    string // the encoded value's codec, in layers outside the process
	Type     string // the Go type of the value, in in-process layers
	Err      string // the layer failed, or held bytes that cannot be read
}

// Inspect reports, layer by layer, what the cache holds under key: present
// or not, fresh or stale, remaining lifetime, tags, size and codec. It is
// for operators and tests: it reads every layer (under the usual timeouts
// and breakers) and copies nothing into upper layers.
func (c *Cache) Inspect(ctx context.Context, key string) ([]LayerEntry, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	key = c.scopedKey(ctx, key)
	now := time.Now().UnixNano()
	out := make([]LayerEntry, len(c.layers))
	for i, l := range c.layers {
		le := LayerEntry{Layer: l.name}
		e, err := l.get(ctx, key)
		switch {
		case err != nil:
			le.Err = err.Error()
		case e != nil && !e.Expired(now):
			le.Present, le.Negative, le.Tags = true, e.Negative, e.Tags
			le.Fresh = isFresh(e, now)
			if e.ExpiresAt != 0 {
				le.TTL = time.Duration(e.ExpiresAt - now)
			}
			if e.StaleAt != 0 && le.Fresh {
				le.StaleIn = time.Duration(e.StaleAt - now)
			}
			if l.inProcess && e.Payload == nil {
				if !e.Negative {
					le.Type = fmt.Sprintf("%T", e.Value)
				}
			} else {
				le.Size, le.Codec = len(e.Payload), e.Codec
			}
		}
		out[i] = le
	}
	return out, nil
}
