// Package memcached is a layercache layer on memcached, through
// github.com/bradfitz/gomemcache.
//
// Like the Redis layer it sits below the in-process one and is shared by
// every instance of a service: a value one instance loads is found there by
// the others. It suits fleets that already run memcached, or that want a
// shared layer whose memory is bounded and evicted by the server (LRU)
// rather than by TTL alone.
//
// Programs build a layer with [New], or from a configuration file through
// the "memcached" driver that this package registers:
//
//	import _ "github.com/layercache/layercache/drivers/memcached"
//
//	layers:
//	  - driver: memory
//	  - driver: memcached
//	    addrs: [10.0.0.1:11211, 10.0.0.2:11211]
//	    ttl: 1h
//	    timeout: 100ms
//	    max_value_size: 1023KiB
//
// # Records
//
// Values are stored as records of package driver/envelope (format version,
// expiry, freshness, tags, codec name, payload optionally compressed with
// S2, checksum), one memcached item per key; a tagged entry's record comes
// after a short header with its tags' epochs (see Tags below). A value that
// is not a valid record (written by another program, truncated, or from an
// unknown format version) is an error wrapping envelope.ErrCorrupt; the
// cache counts it and treats it as a miss.
//
// # Keys
//
// memcached keys are at most 250 bytes with no spaces or control
// characters. A cache key is stored as Options.Prefix followed by the key
// when that fits these rules; any other key (too long, containing a space,
// a control character or DEL, empty, or starting with '#') is stored as the
// prefix, '#' and the unpadded base64url SHA-256 of the key: 44 bytes
// whatever the key's length. Keys that start with '#' are hashed too, so
// that a hashed key and a literal one can never meet. The mapping is
// deterministic, so every instance finds a value where another stored it.
// SHA-256 rather than a faster hash because a collision would serve one
// key's value for another's, and keys often carry user input that an
// attacker could choose.
//
// # Expiry
//
// memcached counts expiry in whole seconds: a relative number of seconds
// up to 30 days, and beyond that an absolute Unix time. The layer converts
// each entry's remaining lifetime, capped by Options.TTL, to whichever form
// the length requires, rounding up. memcached's clock ticks once a second,
// so an entry whose own expiry (rather than the TTL cap) decides is kept one
// second longer; the layer itself never returns an entry once its ExpiresAt
// has passed, whatever memcached still holds. Times past what memcached's
// 32-bit field can say (January 2038) are capped there. memcached may evict
// any entry earlier to make room.
//
// # Servers
//
// With several addresses, each key goes to one server chosen by rendezvous
// hashing (github.com/dgryski/go-rendezvous over XXH3), so that adding or
// removing a server moves only that server's share of the keys instead of
// nearly all of them, and the order of the list does not matter. Addresses
// are resolved when connecting, not when the layer is built, so a server
// whose name does not resolve yet does not stop a program from starting.
// An address containing '/' is a Unix socket path.
//
// # Timeouts
//
// gomemcache takes no context; its sockets carry deadlines instead. The
// layer sets them to Options.Timeout, so that every operation is bounded
// by it (a connection that must first be dialled gets the timeout for the
// dial and again for the exchange), and reports the timeout as its own
// ([Layer.Timeout], driver.Timeouter): the cache then adds no deadline of
// its own. A context that is already done fails an operation at once; a
// context whose deadline comes before the layer's timeout ends the wait at
// that deadline (the exchange goes on in the background until its socket
// deadline); a context cancelled without a deadline is noticed when the
// operation ends, within the timeout. Honouring a shorter deadline costs a
// goroutine hand-off per operation (see BenchmarkGetDeadline), so a timeout
// no longer than the deadlines callers usually carry keeps operations on
// the caller's goroutine.
//
// # Tags
//
// memcached cannot list its keys, so [Layer.InvalidateTags] cannot find a
// tag's entries. Each tag has an epoch instead, a random number in an item
// of its own ("PREFIX#tag#" and the tag's SHA-256); an entry is stored with
// its tags' epochs and is a miss once one of them has changed, and
// invalidating a tag deletes its epoch. An invalidation racing a write, or
// an epoch that memcached evicts, therefore costs a miss, never a stale
// value. Untagged entries pay nothing for this; a tagged one costs one more
// round trip to write and one more to read, whatever the number of tags
// (and, on the first write after a tag was created or invalidated, one to
// create its epoch).
//
// # What memcached cannot do
//
// memcached cannot list keys by prefix, so the layer does not implement
// driver.Clearer: [github.com/layercache/layercache.Cache.Clear] returns an
// error saying so for this layer (the other layers are still cleared), and
// its entries live on until they expire or their tags are invalidated.
// Flushing the whole server would remove other programs' items, so the
// layer never does it.
package memcached
