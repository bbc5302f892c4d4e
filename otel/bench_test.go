package layercacheotel_test

import (
	"context"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	layercacheotel "github.com/layercache/layercache/otel"
)

type benchUser struct {
	ID   int64
	Name string
}

// discard is a span processor that exports nothing, so that the SDK
// benchmark measures recording, not an exporter.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// emptyObserver does nothing: beside observer=none it shows what the cache
// itself pays for having an observer, apart from any OpenTelemetry work.
type emptyObserver struct{}

func (emptyObserver) Begin(ctx context.Context, _ layercache.Operation) context.Context { return ctx }
func (emptyObserver) Finish(context.Context, layercache.Operation, layercache.Outcome)  {}
func (emptyObserver) Event(context.Context, layercache.Event)                           {}

// observers are the configurations the benchmarks compare; none is the
// baseline the 10% claim for otel-noop is measured against.
func observers(b *testing.B) []struct {
	name string
	obs  layercache.Observer
} {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	mk := func(opts ...layercacheotel.Option) layercache.Observer {
		o, err := layercacheotel.New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		return o
	}
	return []struct {
		name string
		obs  layercache.Observer
	}{
		{"none", nil},
		{"empty", emptyObserver{}},
		{"otel-noop", mk(layercacheotel.WithTracerProvider(tracenoop.NewTracerProvider()),
			layercacheotel.WithMeterProvider(metricnoop.NewMeterProvider()))},
		{"otel-sdk-metrics", mk(layercacheotel.WithTracerProvider(tracenoop.NewTracerProvider()),
			layercacheotel.WithMeterProvider(mp))},
		{"otel-sdk", mk(layercacheotel.WithTracerProvider(tp), layercacheotel.WithMeterProvider(mp))},
	}
}

func benchCache(b *testing.B, obs layercache.Observer) *layercache.Cache {
	var opts []layercache.Option
	if obs != nil {
		opts = append(opts, layercache.WithObserver(obs))
	}
	c := newCache(b, []driver.Layer{newMemory(b)}, opts...)
	_, err := layercache.Get(context.Background(), c, "user:42", func(context.Context) (benchUser, error) {
		return benchUser{ID: 42, Name: "ada"}, nil
	}, layercache.WithTTL(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkL1Hit is a Get answered by the memory layer, with each observer
// configuration in the same run.
func BenchmarkL1Hit(b *testing.B) {
	ctx := context.Background()
	id := int64(42)
	for _, o := range observers(b) {
		c := benchCache(b, o.obs)
		b.Run("observer="+o.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				// A closure capturing locals, as real callers write it.
				u, err := layercache.Get(ctx, c, "user:42", func(context.Context) (benchUser, error) {
					return benchUser{ID: id}, nil
				}, layercache.WithTTL(time.Hour))
				if err != nil || u.ID != 42 {
					b.Fatal(u, err)
				}
			}
		})
	}
}

func BenchmarkL1HitParallel(b *testing.B) {
	ctx := context.Background()
	id := int64(42)
	for _, o := range observers(b) {
		c := benchCache(b, o.obs)
		b.Run("observer="+o.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u, err := layercache.Get(ctx, c, "user:42", func(context.Context) (benchUser, error) {
						return benchUser{ID: id}, nil
					}, layercache.WithTTL(time.Hour))
					if err != nil || u.ID != 42 {
						b.Fatal(u, err)
					}
				}
			})
		})
	}
}
