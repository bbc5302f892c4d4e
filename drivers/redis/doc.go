// Package redis is the layercache layer (L2) on Redis, through go-redis v9.
//
// One [Layer] works with any go-redis
// [github.com/redis/go-redis/v9.UniversalClient]: a standalone server,
// a Sentinel-managed master or a Cluster. Every instance of a service shares
// the layer, so it is where a value loaded by one instance is found by the
// others.
//
// Values are stored as records of package driver/envelope (format version,
// expiry, freshness, tags, codec name, payload optionally compressed with S2,
// XXH3 checksum), one Redis string per key, written with SET ... PX so that Redis
// itself drops an entry when it expires. A value that is not a valid record
// (written by something else, truncated, or from an unknown format version)
// is reported as an error wrapping envelope.ErrCorrupt; the cache counts it
// and treats it as a miss.
//
// Keys are Options.Prefix followed by the cache key. A namespace prefix such
// as "myapp:" is usual: it keeps the cache's keys apart from anything else in
// the database, and [Layer.Clear] refuses to run without one.
//
// In Cluster mode, multi-key operations (GetMany, Delete, SetMany and the
// deletes of Clear) are split by hash slot, computed here with the CRC16 of
// the Redis Cluster specification, and sent as one pipeline, so that keys
// spread over many slots never produce a CROSSSLOT error. The slot function is
// written by hand because go-redis keeps its own in an internal package.
//
// Programs build a layer with [New] from their own client, or from a
// configuration file through the "redis" driver that this package registers:
//
//	import _ "github.com/layercache/layercache/drivers/redis"
//
//	layers:
//	  - driver: redis
//	    url: redis://localhost:6379/0   # or addrs: [...] (+ master_name for Sentinel)
//	    prefix: "myapp:"
//	    ttl: 1h
//	    timeout: 100ms
//
// Besides the layer, the package provides what makes instances of a
// service act as one:
//
//   - [Bus], an invalidation bus on Redis pub/sub (one channel per
//     namespace, a compact versioned message format). Each reconnection
//     resets the subscribing cache, since messages may have been missed.
//   - [Coordinator], the cross-process single-flight: a lock per key taken
//     with SET NX and a lease, renewed while the load runs and released by
//     compare-and-delete, so a miss across instances loads once and a
//     crashed holder delays the others by its lease at most.
//   - A tag index, so that [Layer.InvalidateTags] deletes a tag's entries
//     in short batches however many there are.
//
// The "redis" driver opens all three from configuration; a bus or
// singleflight block without an address shares the Redis layer's client:
//
//	bus: { driver: redis }
//	singleflight: { driver: redis, lease: 5s, wait: notify }
//
// The cross-instance pieces need Redis 5 or later (their scripts read the
// server's clock).
//
// Context deadlines are what keep a slow or stopped Redis from stalling the
// cache: go-redis honours them on socket reads only when the client was made
// with ContextTimeoutEnabled. Clients built from configuration have it; a
// client passed to [New] should have it too.
//
// # Trust
//
// Redis is often shared with other software, and anyone who can write to
// it could otherwise plant values the cache serves or publish
// invalidations that every instance obeys. Each of these closes one door:
//
//   - Signed values ([Options.SigningKeys], signing_keys in a layer block):
//     every record carries an HMAC-SHA256 bound to its Redis key; a record
//     without a valid one is a miss and a counted error
//     ([ErrUnauthenticated], [Layer.Stats]).
//   - Signed bus messages ([BusOptions.SigningKeys], signing_keys in the
//     bus block): messages without a valid HMAC-SHA256, or replayed from
//     outside [BusOptions.ReplayWindow] or a second time, are dropped and
//     counted ([BusStats]).
//   - TLS: a rediss:// URL or tls: true, with tls_ca_file for a server
//     whose certificate the system does not trust, and tls_cert_file and
//     tls_key_file for servers that ask for a client certificate.
//   - ACLs: a Redis user limited to the namespace's keys and channels.
//     Opening from configuration checks the user's rights with one
//     pipeline of commands that change nothing ([Layer.CheckAccess],
//     [Coordinator.CheckAccess]) and fails with an error wrapping
//     [ErrPermission] that names a missing right; the bus checks its
//     channel when it subscribes.
//
// Keys are lists, so they can be rotated: the first signs, all verify.
// In a file or the environment a key is hex or base64 text (see [Key]);
// every value can come from the environment, which is where keys belong:
//
//	LAYERCACHE_LAYERS__1__SIGNING_KEYS=NEW_HEX,OLD_HEX
//	LAYERCACHE_BUS__SIGNING_KEYS=HEX
//
// A Redis user for namespace "myapp" needs its keys "myapp:*" (the layer's
// prefix) and "layercache:myapp:*" (load locks), its channels
// "layercache:myapp:*", and the commands the layer, bus and coordinator
// run, those in their scripts included:
//
//	ACL SETUSER myapp on >PASSWORD ~myapp:* ~layercache:myapp:* &layercache:myapp:* \
//	    +@read +@write +@scripting +@pubsub +ping +time -@dangerous
package redis
