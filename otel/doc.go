// Package layercacheotel traces and meters a layercache [layercache.Cache]
// with OpenTelemetry. It implements [layercache.Observer], so it plugs in
// with [layercache.WithObserver]:
//
//	obs, err := layercacheotel.New(
//		layercacheotel.WithAttributes(attribute.String("cache.name", "users")),
//	)
//	if err != nil { ... }
//	c, err := layercache.New(layers, layercache.WithObserver(obs))
//
// # Traces
//
// Every cache operation is a span of kind Internal named after it
// ("layercache.get", "layercache.lookup", "layercache.set",
// "layercache.delete", "layercache.invalidate_tags", "layercache.clear").
// A loader call is a child span, "layercache.load", and the loader's context
// carries it, so the spans of the loader's own work (a database query) nest
// under it. Spans carry:
//
//	cache.operation  get, lookup, set, delete, invalidate_tags, clear, load
//	cache.result     hit, stale, miss, loaded, not_found (reads and loads)
//	cache.hit        true when a layer answered the read (reads)
//	cache.layer      the layer that answered, when one did
//	error.type       a short class of the error, on failure
//	cache.key        the key, only with [WithKeys] (cache.keys and cache.tags
//	                 for Delete and InvalidateTags)
//
// A miss and a cached or loaded absence are results, not errors: such spans
// keep an unset status. An operation that returns an error has its span's
// status set to Error, the error recorded as an exception event and
// error.type set.
//
// What happens inside an operation is added to its span as events:
// layercache.layer_op (one operation on a remote layer, with its layer,
// operation, duration and error), layercache.backfill,
// layercache.deduplicated, layercache.stale_served, layercache.breaker_open,
// layercache.breaker_close, layercache.bus_out. Layer operations are events
// rather than child spans because the cache reports them once they have
// ended, so a span would have to be back-dated, because a span costs an
// order of magnitude more than an event, and because a Redis client
// instrumented on its own (go-redis's redisotel) already gives the command
// spans to whoever wants them. Events that happen outside any operation (a
// background write, an incoming bus message) have no span to go on and are
// only counted.
//
// Keys are not put on spans unless [WithKeys] is given: they often carry
// user identifiers or other personal data.
//
// # Metrics
//
//	cache.requests        counter    cache.operation, cache.result, cache.layer, error.type
//	cache.loads           counter    cache.result, error.type
//	cache.load.duration   histogram  seconds; cache.result, error.type
//	cache.layer.duration  histogram  seconds; cache.layer, cache.operation, error.type
//	cache.errors          counter    cache.layer, cache.operation, error.type (failed layer operations)
//	cache.breaker.state   gauge      cache.layer; 0 closed, 1 open
//	cache.bus.messages    counter    cache.bus.direction (in, out), cache.operation, error.type
//	cache.writeback.dropped counter  background writes dropped because the queue was full
//
// Attributes given with [WithAttributes] are added to every span and every
// measurement. A request's cache.result tells hits from misses per layer:
// the hit ratio of L1 is requests{cache.layer="memory"} over all requests.
// cache.layer.duration times operations on layers outside the process only;
// an in-process layer is not timed, which is what keeps an L1 hit cheap.
//
// # Cost
//
// [New] looks at the providers once. With the no-op providers of
// go.opentelemetry.io/otel/trace/noop and go.opentelemetry.io/otel/metric/noop
// the observer does no work at all ([Observer.Enabled] is then false), and
// each of the two is skipped on its own when only it is a no-op. Attribute
// sets are built once per combination of operation, result, layer and error
// class and then reused, so recording a measurement allocates nothing in
// this package; spans allocate in the SDK as spans do.
//
// The default providers are the global ones at the time [New] is called.
// The global providers forward to whatever SDK is installed later, so an
// observer made before otel.SetTracerProvider still reports; it cannot,
// though, tell that nothing is installed yet and pays the global
// delegate's small cost until then.
package layercacheotel
