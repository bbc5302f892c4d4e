// Package config reads a layercache configuration: a YAML document that
// describes the stack of layers, the invalidation bus, the single-flight
// coordinator and the cache-wide settings, with LAYERCACHE_* environment
// variables overriding any value in it. layercache.Open uses it; most
// programs never import it.
//
// The package knows no concrete driver. Each layer's, the bus's and the
// coordinator's block is kept undecoded as a [Block], which implements
// driver.Config: the driver named by the block's "driver" key decodes the
// rest of the block strictly into its own options struct with
// [Block.Decode].
//
// [Load] reads a file and [Parse] a document in memory; both apply the
// environment overrides, then [Config.Validate]. The YAML and environment
// layers are read with koanf; blocks are decoded with mapstructure, through
// hooks that give durations, sizes and values from the environment their
// types and refuse negative ones.
//
// # The document
//
//	namespace: myapp
//	layers:                        # lookup order, fastest first
//	  - driver: memory
//	    ttl: 1m
//	    max_size: 10000
//	  - driver: redis
//	    url: redis://localhost:6379/0
//	    ttl: 1h
//	    timeout: 100ms
//	  - driver: disk
//	    dir: ./var/cache
//	    ttl: 24h
//	bus: { driver: redis, url: redis://localhost:6379/0 }
//	singleflight: { driver: redis, url: redis://localhost:6379/0, lease: 5s }
//	degradation: { timeout: 100ms, retry_after: 10s, failure_threshold: 5, start_degraded: false }
//	defaults: { ttl: 5m, negative_ttl: 30s, stale_while_revalidate: 0s, stale_if_error: 0s, jitter: 0.1 }
//
// The top-level keys, all of which but layers may be left out:
//
//   - namespace (string): prefixes every key stored in a shared layer.
//     No spaces or control characters. Default: "" (no prefix).
//     See [Config.Namespace].
//   - layers (list of blocks, at least one): the layers in lookup order.
//     Each block has a "driver" key naming a registered driver (memory,
//     redis, disk, ...) and that driver's own keys, documented by the
//     driver's Options type. See [Config.Layers].
//   - bus (block): the invalidation bus; its "driver" key names a driver
//     that provides one, such as redis. Without it, instances do not hear
//     of each other's writes. A bus block may leave out its address to
//     share the connection of the stack's layer of the same driver, if the
//     driver supports it. See [Config.Bus].
//   - singleflight (block): the coordinator that runs a load once across
//     processes; as for bus. Without it, loads are deduplicated within a
//     process only. See [Config.Singleflight].
//   - degradation (block): timeout (duration, default 100ms),
//     retry_after (duration, default 10s), failure_threshold (count,
//     default 5), start_degraded (bool, default false). See [Degradation].
//   - defaults (block): ttl (duration, default 5m), negative_ttl
//     (duration, default 30s), stale_while_revalidate (duration, default
//     0), stale_if_error (duration, default 0), jitter (number in [0, 1),
//     default 0.1). See [Defaults].
//
// Top-level keys starting with "x-" are ignored, so that a block can be
// written once with a YAML anchor and used by alias or merge key:
//
//	x-redis: &redis { driver: redis, url: redis://cache:6379/0 }
//	layers:
//	  - driver: memory
//	  - { <<: *redis, ttl: 1h }
//	bus: *redis
//
// A key left out takes its default; a key written with no value
// ("ttl:" or "ttl: null") counts as left out. An explicit zero is kept:
// "jitter: 0" turns jitter off.
//
// # Values
//
// Durations are Go durations: "100ms", "1m30s", "24h". The number 0 needs
// no unit; any other bare number is an error, since "60" could mean
// seconds or nanoseconds.
//
// Every integer key, in any block, takes a whole number or a size with a
// unit: "64MiB", "1GB", "512KiB", "1.5 GiB". Decimal units (KB, MB, GB, TB,
// PB) are powers of 1000 and binary ones (KiB, MiB, GiB, TiB, PiB) powers
// of 1024; units are case-insensitive, and a bare K, M or G is refused as
// ambiguous. No duration, size or count may be negative.
//
// Strings must be YAML strings: a number given for a string key (a
// password of digits, say) must be quoted. Booleans are true or false.
// Keys are matched exactly, case included.
//
// # Errors
//
// Every problem is an [*Error] naming the document and line, or the
// environment variable, and the key's path; several are joined with
// [errors.Join], so one run reports them all:
//
//	layercache/config: prod.yaml:12: layers[1].tiemout: unknown key (did you mean "timeout"?)
//	layercache/config: prod.yaml:4: layers[0].ttl: must not be negative, got -1m0s
//	layercache/config: env LAYERCACHE_LAYERS__1__TIMEOUT: layers[1].timeout: invalid duration "fast": ...
//
// A missing file, YAML that does not parse, an unknown key at the top
// level or in degradation or defaults, a value of the wrong type, an
// impossible value, an empty layer list and a block without a driver key
// are reported by [Load] and [Parse]. An unknown key or wrong value inside
// a driver's block is reported when the driver decodes the block, which
// layercache.Open does for every block before it returns.
//
// # Environment overrides
//
// Any value of the document can be set, replaced or added by an
// environment variable, so that secrets and per-host addresses need not be
// in the file. The variable's name is LAYERCACHE_ followed by the key's
// path in upper case, with a double underscore between keys (keys are
// snake_case, so a single underscore is part of a key) and a list entry
// addressed by its index:
//
//	LAYERCACHE_NAMESPACE=myapp                     namespace
//	LAYERCACHE_DEGRADATION__RETRY_AFTER=5s         degradation.retry_after
//	LAYERCACHE_DEFAULTS__JITTER=0                  defaults.jitter
//	LAYERCACHE_LAYERS__0__MAX_SIZE=64MiB           layers[0].max_size
//	LAYERCACHE_LAYERS__1__URL=redis://cache:6379/0 layers[1].url
//	LAYERCACHE_LAYERS__1__PASSWORD=secret          layers[1].password, added
//	LAYERCACHE_LAYERS__1__ADDRS=a:7000,b:7001      layers[1].addrs, a list
//	LAYERCACHE_LAYERS__1__TLS__CA_FILE=/etc/ca.pem layers[1].tls.ca_file
//	LAYERCACHE_LAYERS__2__DRIVER=disk              layers[2].driver
//	LAYERCACHE_BUS__URL=redis://bus:6379/0         bus.url
//	LAYERCACHE_SINGLEFLIGHT__LEASE=10s             singleflight.lease
//
// The rules:
//
//   - Every variable whose name starts with LAYERCACHE_ is an override;
//     one that names no key a block takes is an unknown-key error like a
//     misspelt key in the file.
//   - The name after the prefix is lower-cased and split at each "__".
//     Within a block the part is a key; within a list it must be an index.
//   - An index must name an existing entry: LAYERCACHE_LAYERS__3__URL with
//     three layers is an error. Overrides change layers; they do not add
//     them.
//   - A key the document leaves out is added, and a block it leaves out is
//     created: LAYERCACHE_BUS__DRIVER=redis with LAYERCACHE_BUS__URL=...
//     adds a bus to a file that has none.
//   - A variable sets one value. A block of keys, or a list of blocks such
//     as layers, cannot be replaced by one variable; set its keys one by one.
//   - A value from the environment is a string until it is decoded into the
//     field it lands in, and is then parsed for that field's type: a
//     duration, a number or size, true or false (also 1, 0, t, f), or, for
//     a list, comma-separated items each parsed for the element type (an
//     empty value is an empty list).
//   - Overrides are applied in the order of their names, after the file is
//     read and before anything is validated or decoded.
//
// Errors in a value that came from the environment name the variable
// instead of the file.
package config
