package layercacheotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	layercacheotel "github.com/layercache/layercache/otel"
)

var (
	opGet    = attribute.String("cache.operation", "get")
	opSet    = attribute.String("cache.operation", "set")
	opLoad   = attribute.String("cache.operation", "load")
	hit      = attribute.Bool("cache.hit", true)
	noHit    = attribute.Bool("cache.hit", false)
	resHit   = attribute.String("cache.result", "hit")
	resStale = attribute.String("cache.result", "stale")
	resMiss  = attribute.String("cache.result", "miss")
	resLoad  = attribute.String("cache.result", "loaded")
	resNF    = attribute.String("cache.result", "not_found")
	onMemory = attribute.String("cache.layer", "memory")
	onRedis  = attribute.String("cache.layer", "redis")
	noLayer  = attribute.String("cache.layer", "") // absent
	noError  = attribute.String("error.type", "")  // absent
)

func TestObserver_L1Hit(t *testing.T) {
	h := newHarness(t)
	if !h.obs.Enabled() {
		t.Fatal("not Enabled on SDK providers")
	}
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "user:42", "ada"))
	h.reset()

	v, err := layercache.Get(ctx, c, "user:42", func(context.Context) (string, error) { return "", errors.New("not called") })
	if v != "ada" || err != nil {
		t.Fatal(v, err)
	}
	s := h.one(t, "layercache.get")
	if s.SpanKind() != trace.SpanKindInternal {
		t.Errorf("span kind %v, want internal", s.SpanKind())
	}
	if s.InstrumentationScope().Name != layercacheotel.ScopeName {
		t.Errorf("scope %q", s.InstrumentationScope().Name)
	}
	wantAttrs(t, s, opGet, resHit, hit, onMemory)
	noAttrs(t, s, "cache.key", "error.type")
	if s.Status().Code != codes.Unset {
		t.Errorf("status %v", s.Status())
	}
	if len(h.ended("layercache.load")) != 0 {
		t.Error("an L1 hit ran a load")
	}

	rm := h.collect(t)
	if n := sum(t, rm, "cache.requests", opGet, resHit, onMemory, noError); n != 1 {
		t.Errorf("cache.requests{get,hit,memory} = %d, want 1; points %v", n, pointSets(rm, "cache.requests"))
	}
	if n := sum(t, rm, "cache.requests", opSet, noLayer); n != 1 {
		t.Errorf("cache.requests{set} = %d, want 1; points %v", n, pointSets(rm, "cache.requests"))
	}
	if n := sum(t, rm, "cache.loads"); n != 0 {
		t.Errorf("cache.loads = %d, want 0", n)
	}
}

func TestObserver_L2HitBackfills(t *testing.T) {
	h := newHarness(t)
	l1 := newMemory(t)
	l2, _ := newRedis(t)
	c := newCache(t, []driver.Layer{l1, l2}, layercache.WithObserver(h.obs))
	ctx := context.Background()
	must(t, layercache.Set(ctx, c, "user:42", "ada", layercache.WithTTL(time.Minute)))
	must(t, l1.Delete(ctx, "user:42")) // only Redis has it now
	h.reset()

	v, err := layercache.Get(ctx, c, "user:42", func(context.Context) (string, error) { return "", errors.New("not called") })
	if v != "ada" || err != nil {
		t.Fatal(v, err)
	}
	s := h.one(t, "layercache.get")
	wantAttrs(t, s, opGet, resHit, hit, onRedis)
	op := event(t, s, "layercache.layer_op")
	if l, _ := eventAttr(op, "cache.layer"); l.AsString() != "redis" {
		t.Errorf("layer_op on %q, want redis", l.AsString())
	}
	if o, _ := eventAttr(op, "cache.operation"); o.AsString() != "get" {
		t.Errorf("layer_op %q, want get", o.AsString())
	}
	if d, ok := eventAttr(op, "cache.duration"); !ok || d.AsFloat64() <= 0 {
		t.Errorf("layer_op duration %v (present %v)", d.AsFloat64(), ok)
	}
	bf := event(t, s, "layercache.backfill")
	if l, _ := eventAttr(bf, "cache.layer"); l.AsString() != "memory" {
		t.Errorf("backfill into %q, want memory", l.AsString())
	}
	if len(h.ended("layercache.load")) != 0 {
		t.Error("an L2 hit ran a load")
	}

	// The backfill makes the next read an L1 hit.
	h.reset()
	if _, err := layercache.Get(ctx, c, "user:42", func(context.Context) (string, error) { return "", errors.New("not called") }); err != nil {
		t.Fatal(err)
	}
	wantAttrs(t, h.one(t, "layercache.get"), resHit, onMemory)

	rm := h.collect(t)
	if n := sum(t, rm, "cache.requests", opGet, resHit, onRedis); n != 1 {
		t.Errorf("cache.requests{get,hit,redis} = %d, want 1; points %v", n, pointSets(rm, "cache.requests"))
	}
	if n := sum(t, rm, "cache.requests", opGet, resHit, onMemory); n != 1 {
		t.Errorf("cache.requests{get,hit,memory} = %d, want 1", n)
	}
	// Set and Get each did one operation on Redis.
	for _, op := range []string{"set", "get"} {
		if n := count(t, rm, "cache.layer.duration", onRedis, attribute.String("cache.operation", op), noError); n != 1 {
			t.Errorf("cache.layer.duration{redis,%s} count %d, want 1; points %v", op, n, pointSets(rm, "cache.layer.duration"))
		}
	}
	if n := sum(t, rm, "cache.errors"); n != 0 {
		t.Errorf("cache.errors = %d, want 0", n)
	}
}

func TestObserver_MissLoadsInChildSpan(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
	var inLoader trace.SpanContext
	v, err := layercache.Get(context.Background(), c, "user:42", func(ctx context.Context) (string, error) {
		inLoader = trace.SpanContextFromContext(ctx)
		return "ada", nil
	})
	if v != "ada" || err != nil {
		t.Fatal(v, err)
	}
	get, load := h.one(t, "layercache.get"), h.one(t, "layercache.load")
	wantAttrs(t, get, opGet, resLoad, noHit)
	noAttrs(t, get, "cache.layer", "error.type")
	wantAttrs(t, load, opLoad, resLoad)
	if load.Parent().SpanID() != get.SpanContext().SpanID() {
		t.Errorf("load span's parent %v, want the get span %v", load.Parent().SpanID(), get.SpanContext().SpanID())
	}
	if inLoader.SpanID() != load.SpanContext().SpanID() {
		t.Errorf("loader's context carries span %v, want the load span %v", inLoader.SpanID(), load.SpanContext().SpanID())
	}
	if get.Status().Code != codes.Unset || load.Status().Code != codes.Unset {
		t.Errorf("statuses %v, %v", get.Status(), load.Status())
	}

	rm := h.collect(t)
	if n := sum(t, rm, "cache.loads", resLoad, noError); n != 1 {
		t.Errorf("cache.loads{loaded} = %d, want 1; points %v", n, pointSets(rm, "cache.loads"))
	}
	if n := count(t, rm, "cache.load.duration", resLoad); n != 1 {
		t.Errorf("cache.load.duration{loaded} count %d, want 1", n)
	}
	if n := sum(t, rm, "cache.requests", opGet, resLoad, noLayer); n != 1 {
		t.Errorf("cache.requests{get,loaded} = %d, want 1; points %v", n, pointSets(rm, "cache.requests"))
	}
	if n := sum(t, rm, "cache.requests", opLoad); n != 0 {
		t.Errorf("a load was counted as a request too (%d)", n)
	}
}

func TestObserver_NotFoundAndMissAreNotErrors(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
	ctx := context.Background()
	absent := func(context.Context) (string, error) { return "", layercache.ErrNotFound }
	for range 2 { // a load, then the cached absence
		if _, err := layercache.Get(ctx, c, "gone", absent, layercache.WithNegativeTTL(time.Minute)); !errors.Is(err, layercache.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if _, ok, err := layercache.Lookup[string](ctx, c, "never"); ok || err != nil {
		t.Fatal(ok, err)
	}
	gets := h.ended("layercache.get")
	if len(gets) != 2 {
		t.Fatalf("%d get spans", len(gets))
	}
	wantAttrs(t, gets[0], resNF, noHit)
	wantAttrs(t, gets[1], resNF, hit, onMemory)
	wantAttrs(t, h.one(t, "layercache.load"), resNF)
	lookup := h.one(t, "layercache.lookup")
	wantAttrs(t, lookup, resMiss, noHit)
	for _, s := range h.spans.Ended() {
		if s.Status().Code != codes.Unset || len(s.Events()) != 0 {
			t.Errorf("span %s: status %v, events %v; a miss is not an error", s.Name(), s.Status(), eventNames(s))
		}
		noAttrs(t, s, "error.type")
	}
	rm := h.collect(t)
	if n := sum(t, rm, "cache.loads", resNF, noError); n != 1 {
		t.Errorf("cache.loads{not_found} = %d, want 1; points %v", n, pointSets(rm, "cache.loads"))
	}
}

func TestObserver_LoaderErrorSetsStatus(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
	_, err := layercache.Get(context.Background(), c, "k", func(context.Context) (string, error) {
		return "", errors.New("db down")
	})
	if err == nil {
		t.Fatal("no error")
	}
	other := attribute.String("error.type", "_OTHER")
	for _, name := range []string{"layercache.get", "layercache.load"} {
		s := h.one(t, name)
		if s.Status().Code != codes.Error || s.Status().Description != "db down" {
			t.Errorf("%s: status %v", name, s.Status())
		}
		wantAttrs(t, s, resMiss, other)
		if !slices.Contains(eventNames(s), "exception") {
			t.Errorf("%s: error not recorded, events %v", name, eventNames(s))
		}
	}
	rm := h.collect(t)
	if n := sum(t, rm, "cache.loads", resMiss, other); n != 1 {
		t.Errorf("cache.loads{miss,_OTHER} = %d; points %v", n, pointSets(rm, "cache.loads"))
	}
	if n := sum(t, rm, "cache.requests", opGet, resMiss, other); n != 1 {
		t.Errorf("cache.requests{get,miss,_OTHER} = %d; points %v", n, pointSets(rm, "cache.requests"))
	}

	// A panicking loader is classified as such.
	h.reset()
	_, err = layercache.Get(context.Background(), c, "p", func(context.Context) (string, error) { panic("boom") })
	if err == nil {
		t.Fatal("no error")
	}
	wantAttrs(t, h.one(t, "layercache.load"), attribute.String("error.type", "panic"))
}

func TestObserver_StaleServedOnLoaderError(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
	ctx := context.Background()
	opts := []layercache.EntryOption{layercache.WithTTL(10 * time.Millisecond), layercache.WithStaleIfError(time.Hour)}
	must(t, layercache.Set(ctx, c, "k", "old", opts...))
	time.Sleep(30 * time.Millisecond) // past the TTL, well inside the stale window
	h.reset()

	v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "", errors.New("db down") }, opts...)
	if v != "old" || err != nil {
		t.Fatal(v, err)
	}
	get := h.one(t, "layercache.get")
	wantAttrs(t, get, resStale, hit, onMemory)
	noAttrs(t, get, "error.type")
	if get.Status().Code != codes.Unset {
		t.Errorf("get status %v: a stale answer is an answer", get.Status())
	}
	ev := event(t, get, "layercache.stale_served")
	if l, _ := eventAttr(ev, "cache.layer"); l.AsString() != "memory" {
		t.Errorf("stale_served layer %q", l.AsString())
	}
	if m, _ := eventAttr(ev, "error.message"); m.AsString() != "db down" {
		t.Errorf("stale_served error.message %q", m.AsString())
	}
	load := h.one(t, "layercache.load")
	if load.Status().Code != codes.Error {
		t.Errorf("load status %v, want error", load.Status())
	}

	rm := h.collect(t)
	if n := sum(t, rm, "cache.requests", opGet, resStale, onMemory, noError); n != 1 {
		t.Errorf("cache.requests{get,stale,memory} = %d; points %v", n, pointSets(rm, "cache.requests"))
	}
	if n := sum(t, rm, "cache.loads", resMiss); n != 1 {
		t.Errorf("cache.loads{miss} = %d; points %v", n, pointSets(rm, "cache.loads"))
	}
}

func TestObserver_LayerErrorAndBreaker(t *testing.T) {
	h := newHarness(t)
	l2, srv := newRedis(t)
	// Strict writes: the write after a load happens within the Get, so
	// every Redis operation of this test is on a span and in order.
	c := newCache(t, []driver.Layer{newMemory(t), l2}, layercache.WithObserver(h.obs), layercache.WithStrictWrites(),
		layercache.WithDegradation(layercache.Degradation{Timeout: 50 * time.Millisecond, FailureThreshold: 2, RetryAfter: time.Hour}))
	ctx := context.Background()
	srv.Pause()
	t.Cleanup(srv.Resume) // runs before the server is stopped

	// A cold Get: the Redis read times out, the loader answers, the write
	// of its value to Redis times out and opens the breaker. The Get
	// succeeds all the same.
	v, err := layercache.Get(ctx, c, "cold", func(context.Context) (string, error) { return "v", nil })
	if v != "v" || err != nil {
		t.Fatal(v, err)
	}
	get := h.one(t, "layercache.get")
	wantAttrs(t, get, resLoad)
	noAttrs(t, get, "error.type")
	if get.Status().Code != codes.Unset {
		t.Errorf("get status %v: a layer failure the cache absorbed is not the operation's error", get.Status())
	}
	var ops []string
	for _, e := range get.Events() {
		if e.Name != "layercache.layer_op" {
			continue
		}
		l, _ := eventAttr(e, "cache.layer")
		op, _ := eventAttr(e, "cache.operation")
		et, _ := eventAttr(e, "error.type")
		ops = append(ops, l.AsString()+"/"+op.AsString()+"/"+et.AsString())
	}
	if want := []string{"redis/get/timeout", "redis/set/timeout"}; !slices.Equal(ops, want) {
		t.Errorf("layer_op events %v, want %v", ops, want)
	}
	if !slices.Contains(eventNames(get), "layercache.breaker_open") {
		t.Errorf("get span events %v, want a breaker_open", eventNames(get))
	}

	// With the breaker open, Redis is skipped without being asked and Set
	// returns the failure.
	h.reset()
	if err := layercache.Set(ctx, c, "k", "v"); !errors.Is(err, layercache.ErrLayerUnavailable) {
		t.Fatalf("Set with the breaker open: %v", err)
	}
	set := h.one(t, "layercache.set")
	if set.Status().Code != codes.Error {
		t.Errorf("set status %v, want error", set.Status())
	}
	wantAttrs(t, set, opSet, attribute.String("error.type", "layer_unavailable"))
	noAttrs(t, set, "cache.result", "cache.hit")
	if !slices.Contains(eventNames(set), "exception") {
		t.Errorf("set span events %v, want the error recorded", eventNames(set))
	}

	rm := h.collect(t)
	timeout := attribute.String("error.type", "timeout")
	for _, op := range []string{"get", "set"} {
		o := attribute.String("cache.operation", op)
		if n := sum(t, rm, "cache.errors", onRedis, o, timeout); n != 1 {
			t.Errorf("cache.errors{redis,%s,timeout} = %d, want 1; points %v", op, n, pointSets(rm, "cache.errors"))
		}
		if n := count(t, rm, "cache.layer.duration", onRedis, o, timeout); n != 1 {
			t.Errorf("cache.layer.duration{redis,%s,timeout} count %d, want 1; points %v", op, n, pointSets(rm, "cache.layer.duration"))
		}
	}
	if v, ok := gauge(t, rm, "cache.breaker.state", onRedis); !ok || v != 1 {
		t.Errorf("cache.breaker.state{redis} = %d (present %v), want 1; points %v", v, ok, pointSets(rm, "cache.breaker.state"))
	}
	if n := sum(t, rm, "cache.requests", opSet, attribute.String("error.type", "layer_unavailable")); n != 1 {
		t.Errorf("cache.requests{set,layer_unavailable} = %d; points %v", n, pointSets(rm, "cache.requests"))
	}
}

func TestObserver_KeysOnlyWithKeys(t *testing.T) {
	run := func(t *testing.T, opts ...layercacheotel.Option) *harness {
		h := newHarness(t, opts...)
		c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
		ctx := context.Background()
		if _, err := layercache.Get(ctx, c, "user:42", func(context.Context) (string, error) { return "ada", nil }); err != nil {
			t.Fatal(err)
		}
		must(t, layercache.Set(ctx, c, "user:43", "bob"))
		must(t, c.Delete(ctx, "user:42", "user:43"))
		must(t, c.InvalidateTags(ctx, "team:7"))
		return h
	}
	t.Run("default", func(t *testing.T) {
		h := run(t)
		for _, s := range h.spans.Ended() {
			noAttrs(t, s, "cache.key", "cache.keys", "cache.tags")
		}
	})
	t.Run("WithKeys", func(t *testing.T) {
		h := run(t, layercacheotel.WithKeys())
		wantAttrs(t, h.one(t, "layercache.get"), attribute.String("cache.key", "user:42"))
		wantAttrs(t, h.one(t, "layercache.load"), attribute.String("cache.key", "user:42"))
		wantAttrs(t, h.one(t, "layercache.set"), attribute.String("cache.key", "user:43"))
		wantAttrs(t, h.one(t, "layercache.delete"), attribute.StringSlice("cache.keys", []string{"user:42", "user:43"}))
		wantAttrs(t, h.one(t, "layercache.invalidate_tags"), attribute.StringSlice("cache.tags", []string{"team:7"}))
		rm := h.collect(t)
		for _, name := range []string{"cache.requests", "cache.loads"} {
			for _, p := range pointSets(rm, name) {
				if slices.Contains([]string{"user:42", "user:43"}, p) || containsAny(p, "user:42", "user:43") {
					t.Errorf("%s point %s carries a key", name, p)
				}
			}
		}
	})
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

func TestObserver_WithAttributesOnEverything(t *testing.T) {
	name := attribute.String("cache.name", "users")
	h := newHarness(t, layercacheotel.WithAttributes(name))
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs))
	if _, err := layercache.Get(context.Background(), c, "k", func(context.Context) (string, error) { return "v", nil }); err != nil {
		t.Fatal(err)
	}
	for _, s := range h.spans.Ended() {
		wantAttrs(t, s, name)
	}
	rm := h.collect(t)
	for _, m := range []string{"cache.requests", "cache.loads"} {
		if n := sum(t, rm, m); n == 0 || sum(t, rm, m, name) != n {
			t.Errorf("%s: %d points, %d with cache.name; %v", m, n, sum(t, rm, m, name), pointSets(rm, m))
		}
	}
	if n := count(t, rm, "cache.load.duration", name); n != 1 {
		t.Errorf("cache.load.duration with cache.name: %d", n)
	}
}

func TestObserver_BusMessages(t *testing.T) {
	h := newHarness(t)
	bus := &memBus{}
	a := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs), layercache.WithBus(bus.client()))
	b := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(h.obs), layercache.WithBus(bus.client()))
	ctx := context.Background()
	must(t, layercache.Set(ctx, a, "k", "v"))
	must(t, b.Delete(ctx, "k"))

	sets := h.ended("layercache.set")
	if len(sets) != 1 || !slices.Contains(eventNames(sets[0]), "layercache.bus_out") {
		t.Fatalf("set spans %d, events %v; want a bus_out event", len(sets), eventNames(sets[0]))
	}
	rm := h.collect(t)
	out, in := attribute.String("cache.bus.direction", "out"), attribute.String("cache.bus.direction", "in")
	for _, c := range []struct {
		dir  attribute.KeyValue
		op   string
		want int64
	}{{out, "set", 1}, {in, "set", 1}, {out, "delete", 1}, {in, "delete", 1}} {
		if n := sum(t, rm, "cache.bus.messages", c.dir, attribute.String("cache.operation", c.op)); n != c.want {
			t.Errorf("cache.bus.messages{%s,%s} = %d, want %d; points %v", c.dir.Value.AsString(), c.op, n, c.want, pointSets(rm, "cache.bus.messages"))
		}
	}
}

// gatedLayer is a remote layer (not in process) that misses on every read
// and whose writes wait until the gate opens, to fill the write-back queue.
type gatedLayer struct{ gate chan struct{} }

func (gatedLayer) Get(context.Context, string) (*driver.Entry, error) { return nil, nil }
func (g gatedLayer) Set(ctx context.Context, _ string, _ *driver.Entry) error {
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (gatedLayer) Delete(context.Context, ...string) error { return nil }
func (gatedLayer) Close() error                            { return nil }
func (gatedLayer) Name() string                            { return "gated" }

func TestObserver_WriteBackDropped(t *testing.T) {
	h := newHarness(t)
	gate := make(chan struct{})
	c := newCache(t, []driver.Layer{newMemory(t), gatedLayer{gate}}, layercache.WithObserver(h.obs),
		layercache.WithWriteBackQueue(1), layercache.WithDegradation(layercache.Degradation{Timeout: time.Minute}))
	t.Cleanup(func() { close(gate) }) // before the cache closes and waits for its writes
	// Two workers hold a write each and the queue one more: of five
	// loads' writes at least two are dropped.
	for i := range 5 {
		if _, err := layercache.Get(context.Background(), c, fmt.Sprint("k", i), func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
	}
	dropped := c.Stats().WriteBackDropped
	if dropped < 2 {
		t.Fatalf("Stats().WriteBackDropped = %d, want >= 2", dropped)
	}
	rm := h.collect(t)
	if n := sum(t, rm, "cache.writeback.dropped"); n != int64(dropped) {
		t.Errorf("cache.writeback.dropped = %d, want %d as in Stats", n, dropped)
	}
	var events int
	for _, s := range h.ended("layercache.get") {
		if slices.Contains(eventNames(s), "layercache.write_back_dropped") {
			events++
		}
	}
	if events != int(dropped) {
		t.Errorf("%d get spans with a write_back_dropped event, want %d", events, dropped)
	}
}
