package driver

import "time"

// Entry is what a layer stores for one key.
//
// An Entry handed to [Layer.Set] or returned by [Layer.Get] is shared and
// must not be modified by either side after the call: in-process layers keep
// the pointer itself so that a hit costs no copy.
type Entry struct {
	// Value is the decoded value. Only in-process layers (see [InProcess])
	// receive and return it; it is nil for a negative entry.
	Value any

	// Payload is the encoded value, produced by the codec named in Codec.
	// Layers that are not in-process receive and return it. A nil Payload and
	// an empty one are different values and must round-trip as such. A
	// payload returned by Get belongs to the caller, which may hand it to
	// users as a []byte value: the layer must not reuse or alias memory it
	// will write again (a buffer pool, a memory map).
	Payload []byte

	// Codec names the codec that produced Payload, so that bytes written by
	// a cache with another codec are recognised rather than misread.
	Codec string

	// StaleAt is when the entry stops being fresh, in Unix nanoseconds.
	// Between StaleAt and ExpiresAt the entry is stale: the cache serves it
	// only while revalidating it or when the loader fails.
	StaleAt int64

	// ExpiresAt is when the entry must no longer be returned, in Unix
	// nanoseconds. Zero means it never expires. A layer may keep the entry
	// for less time (its own TTL or eviction) but never for more.
	ExpiresAt int64

	// Tags are the invalidation tags the entry was written with.
	Tags []string

	// Negative marks a cached absence: the loader reported that the key
	// does not exist.
	Negative bool
}

// Expired reports whether the entry must no longer be returned at now
// (Unix nanoseconds).
func (e *Entry) Expired(now int64) bool {
	return e.ExpiresAt != 0 && now >= e.ExpiresAt
}

// TTL returns how long the entry has left to live at now, or 0 when it never
// expires. An expired entry has a negative TTL.
func (e *Entry) TTL(now int64) time.Duration {
	if e.ExpiresAt == 0 {
		return 0
	}
	return time.Duration(e.ExpiresAt - now)
}

// HasTag reports whether the entry carries tag.
func (e *Entry) HasTag(tag string) bool {
	for _, t := range e.Tags {
		if t == tag {
			return true
		}
	}
	return false
}
