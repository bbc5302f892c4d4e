// Package memory is the in-process layer of a layercache stack (L1), built on
// github.com/maypok86/otter/v2.
//
// The layer keeps the *driver.Entry it is given, decoded value and all, so a
// hit costs one otter lookup: no decoding, no copy, no allocation. Entries are
// bounded by count ([Options.MaxSize], evicted by otter's W-TinyLFU policy) and
// by time: each entry lives until the earlier of its own
// [driver.Entry.ExpiresAt] and the layer's [Options.TTL].
//
// Programs select it by name in a configuration file after a blank import:
//
//	import _ "github.com/layercache/layercache/drivers/memory"
//
//	layers:
//	  - driver: memory
//	    ttl: 1m
//	    max_size: 10000
//
// or build it directly with [New]. Because the cache hands the same entry to
// every caller, nobody may modify an entry after [Layer.Set] or [Layer.Get].
package memory
