// Package layercache is a layered cache for Go services: in-process memory
// (L1), Redis (L2, shared by every instance) and disk (L3) behind one API,
// with single-flight loads, cross-instance invalidation and graceful
// degradation when a layer is slow or down.
//
// A read is served by the fastest layer that has the key and backfills the
// faster ones; a miss runs the loader once however many callers ask at the
// same time. The 30-second version:
//
//	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
//	c, _ := layercache.New([]driver.Layer{l1})
//	defer c.Close()
//
//	u, err := layercache.Get(ctx, c, "user:42", func(ctx context.Context) (User, error) {
//		return db.User(ctx, 42) // runs once per miss, whoever else asks meanwhile
//	}, layercache.WithTTL(time.Minute), layercache.WithTags("users"))
//
//	err = c.InvalidateTags(ctx, "users")
//
// Layers are drivers (package [github.com/layercache/layercache/driver]),
// registered by name like database/sql drivers, so a stack can also be
// described in a YAML file and built with Open.
//
// Values in in-process layers are kept decoded, so an L1 hit neither decodes
// nor allocates; callers share those values and must not mutate them (see
// [WithClone]). Layers outside the process store the value encoded by a
// [Codec] (JSON by default) in a versioned, checksummed envelope; a corrupt
// or foreign value there is a miss and a counted error, never a panic.
//
// Layers outside the process run every operation under a timeout and behind
// a circuit breaker (see [Degradation]): when Redis is slow or dead, warm
// keys keep being served from memory and cold ones fall through to the
// loader after at most one timeout, and after the breaker opens, at once.
package layercache
