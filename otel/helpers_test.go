package layercacheotel_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
	layercacheotel "github.com/layercache/layercache/otel"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// cache, client, provider and server a test starts is stopped by Cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an observer on a real SDK whose spans and metrics the test
// reads back.
type harness struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	obs    *layercacheotel.Observer
}

func newHarness(t *testing.T, opts ...layercacheotel.Option) *harness {
	t.Helper()
	h := &harness{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := layercacheotel.New(append([]layercacheotel.Option{
		layercacheotel.WithTracerProvider(tp), layercacheotel.WithMeterProvider(mp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.obs = obs
	return h
}

// ended returns the spans ended so far named name, oldest first.
func (h *harness) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only span named name, failing the test otherwise.
func (h *harness) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	s := h.ended(name)
	if len(s) != 1 {
		t.Fatalf("%d spans named %s, want 1 (all: %v)", len(s), name, spanNames(h.spans.Ended()))
	}
	return s[0]
}

// reset forgets the spans recorded so far.
func (h *harness) reset() { h.spans.Reset() }

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// attr returns the value of key on s, and whether s has it.
func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// wantAttrs checks that s carries every one of want.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	for _, w := range want {
		got, ok := attr(s, string(w.Key))
		if !ok {
			t.Errorf("span %s: no %s (has %v)", s.Name(), w.Key, s.Attributes())
			continue
		}
		if got != w.Value {
			t.Errorf("span %s: %s = %s, want %s", s.Name(), w.Key, got.Emit(), w.Value.Emit())
		}
	}
}

// noAttrs checks that s carries none of keys.
func noAttrs(t *testing.T, s sdktrace.ReadOnlySpan, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if v, ok := attr(s, k); ok {
			t.Errorf("span %s: has %s = %s, want none", s.Name(), k, v.Emit())
		}
	}
}

// eventNames lists the names of s's events.
func eventNames(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Name)
	}
	return out
}

// event returns the first event of s named name.
func event(t *testing.T, s sdktrace.ReadOnlySpan, name string) sdktrace.Event {
	t.Helper()
	for _, e := range s.Events() {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("span %s: no event %s in %v", s.Name(), name, eventNames(s))
	return sdktrace.Event{}
}

func eventAttr(e sdktrace.Event, key string) (attribute.Value, bool) {
	for _, kv := range e.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// collect reads the metrics recorded so far.
func (h *harness) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != layercacheotel.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// matches reports whether set holds every one of want; a want whose value
// is the empty string asks for the key to be absent.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, w := range want {
		v, ok := set.Value(w.Key)
		if w.Value.Type() == attribute.STRING && w.Value.AsString() == "" {
			if ok {
				return false
			}
			continue
		}
		if !ok || v != w.Value {
			return false
		}
	}
	return true
}

// sum adds up the points of the int64 counter name whose attributes match.
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0
	}
	data, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", name, m.Data)
	}
	var n int64
	for _, p := range data.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// count adds up the counts of the float64 histogram name whose attributes
// match.
func count(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) uint64 {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0
	}
	data, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, not a float64 histogram", name, m.Data)
	}
	var n uint64
	for _, p := range data.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}

// gauge returns the value of the int64 gauge name for the attributes.
func gauge(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (int64, bool) {
	t.Helper()
	m, ok := find(rm, name)
	if !ok {
		return 0, false
	}
	data, ok := m.Data.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 gauge", name, m.Data)
	}
	for _, p := range data.DataPoints {
		if matches(p.Attributes, want) {
			return p.Value, true
		}
	}
	return 0, false
}

// pointSets lists the attribute sets of name's points, for failure messages.
func pointSets(rm metricdata.ResourceMetrics, name string) []string {
	m, ok := find(rm, name)
	if !ok {
		return nil
	}
	var out []string
	add := func(s attribute.Set) { out = append(out, s.Encoded(attribute.DefaultEncoder())) }
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes)
		}
	}
	slices.Sort(out)
	return out
}

func newMemory(t testing.TB) *memory.Layer {
	t.Helper()
	l, err := memory.New(memory.Options{MaxSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// newRedis returns a Redis layer on its own redis-server, and the server.
func newRedis(t *testing.T) (*redis.Layer, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	// Short socket timeouts, and context deadlines honoured: a paused
	// server must fail an operation quickly, whichever of the two bounds it.
	client := goredis.NewClient(&goredis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           100 * time.Millisecond,
		ReadTimeout:           100 * time.Millisecond,
		WriteTimeout:          100 * time.Millisecond,
	})
	t.Cleanup(func() { _ = client.Close() })
	l, err := redis.New(redis.Options{Client: client, Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	return l, srv
}

func newCache(t testing.TB, layers []driver.Layer, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	c, err := layercache.New(layers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// memBus is an in-process driver.Bus joining the caches of one test, so
// that bus messages can be observed without a server.
type memBus struct {
	mu       sync.Mutex
	handlers []func(driver.Message)
}

type memBusClient struct{ bus *memBus }

func (b *memBus) client() driver.Bus { return memBusClient{b} }

func (c memBusClient) Publish(_ context.Context, m driver.Message) error {
	c.bus.mu.Lock()
	hs := slices.Clone(c.bus.handlers)
	c.bus.mu.Unlock()
	for _, h := range hs {
		h(m)
	}
	return nil
}

func (c memBusClient) Subscribe(_ context.Context, handle func(driver.Message), reset func()) error {
	c.bus.mu.Lock()
	c.bus.handlers = append(c.bus.handlers, handle)
	c.bus.mu.Unlock()
	if reset != nil {
		reset()
	}
	return nil
}

func (memBusClient) Close() error { return nil }
