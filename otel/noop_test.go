package layercacheotel_test

import (
	"context"
	"errors"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	layercacheotel "github.com/layercache/layercache/otel"
)

type ctxKey struct{}

func TestNew_NoopProvidersDoNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []layercacheotel.Option
	}{
		{"values", []layercacheotel.Option{layercacheotel.WithTracerProvider(tracenoop.NewTracerProvider()),
			layercacheotel.WithMeterProvider(metricnoop.NewMeterProvider())}},
		{"pointers", []layercacheotel.Option{layercacheotel.WithTracerProvider(&tracenoop.TracerProvider{}),
			layercacheotel.WithMeterProvider(&metricnoop.MeterProvider{})}},
	} {
		t.Run(c.name, func(t *testing.T) {
			obs, err := layercacheotel.New(c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Enabled() {
				t.Error("Enabled on no-op providers")
			}
			ctx := context.WithValue(context.Background(), ctxKey{}, 1)
			for _, k := range []layercache.OpKind{layercache.OpGet, layercache.OpLoad, layercache.OpSet} {
				if got := obs.Begin(ctx, layercache.Operation{Kind: k, Key: "k"}); got != ctx {
					t.Errorf("Begin(%s) returned a new context", k)
				}
			}
			op := layercache.Operation{Kind: layercache.OpGet, Key: "k"}
			out := layercache.Outcome{Result: layercache.ResultHit, Layer: "memory"}
			ev := layercache.Event{Kind: layercache.EventLayerOp, Layer: "redis", Op: "get", Err: errors.New("down")}
			allocs := testing.AllocsPerRun(100, func() {
				c := obs.Begin(ctx, op)
				obs.Event(c, ev)
				obs.Finish(c, op, out)
			})
			if allocs != 0 {
				t.Errorf("%v allocations per operation on no-op providers, want 0", allocs)
			}
		})
	}
}

// With only metrics on, the observer must leave the caller's span alone:
// Begin puts no span in the context, so Finish has none of its own to end.
func TestObserver_MetricsOnlyLeavesCallerSpanOpen(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := layercacheotel.New(layercacheotel.WithTracerProvider(tracenoop.NewTracerProvider()), layercacheotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(obs))
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	for range 2 {
		if _, err := layercache.Get(ctx, c, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans ended by the cache, want 0: %v", n, spanNames(rec.Ended()))
	}
	span.End()
	h := &harness{reader: reader}
	rm := h.collect(t)
	if n := sum(t, rm, "cache.requests"); n != 2 {
		t.Errorf("cache.requests = %d, want 2", n)
	}
	if n := count(t, rm, "cache.load.duration"); n != 1 {
		t.Errorf("cache.load.duration count %d, want 1", n)
	}
}

// With only tracing on, no instrument is touched and spans are complete.
func TestObserver_TracingOnly(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	obs, err := layercacheotel.New(layercacheotel.WithTracerProvider(tp), layercacheotel.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, []driver.Layer{newMemory(t)}, layercache.WithObserver(obs))
	if _, err := layercache.Get(context.Background(), c, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	h := &harness{spans: rec}
	h.one(t, "layercache.get")
	wantAttrs(t, h.one(t, "layercache.load"), resLoad)
}
