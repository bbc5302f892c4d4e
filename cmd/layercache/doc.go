// Command layercache shows what the layercache library does, measures it,
// and lets operators look at and act on the cache stack an application runs.
//
//	go install github.com/layercache/layercache/cmd/layercache@latest
//
// Verbs:
//
//	demo        a few seconds of the library at work, on memory + disk (no Redis needed)
//	bench       the benchmark scenarios, against a Redis it starts itself or --redis URL
//	stats       per-layer counters, from a running application (--url) or the layers
//	get KEY     the value under KEY, the layer that holds it, its TTL and tags
//	del KEY...  delete keys through the cache, so every instance hears of it
//	invalidate  invalidate --tag T... (or --prefix P) through the cache
//	keys        list keys under --prefix P, with SCAN, at most --limit
//	inspect KEY what every layer holds under KEY: TTL, size, codec, tags
//	ping        each layer's health and latency; exit code 1 when one is down
//
// The admin verbs read the application's own configuration file (--config,
// default layercache.yaml) with the same LAYERCACHE_* environment overrides
// as layercache.Open, so they act on the very stack the application runs.
// Writes go through the cache API and its invalidation bus; reads look at each
// layer directly, because the cache does not say which layer holds a key.
// In-process layers (memory) belong to each application process and cannot be
// seen from here; a disk directory held by a running application is skipped,
// with a note, since it hears of every change through the bus.
//
// Exit codes: 0 success, 1 failure (a layer down, a key not found, an error),
// 2 bad usage. Every verb has --help; read verbs print JSON with --json.
package main
