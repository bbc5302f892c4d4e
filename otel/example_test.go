package layercacheotel_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	layercacheotel "github.com/layercache/layercache/otel"
)

// A cold read loads in a child span; the second read is an L1 hit.
func Example() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder() // a real program exports them
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(ctx) }()

	obs, err := layercacheotel.New(
		layercacheotel.WithTracerProvider(tp),
		layercacheotel.WithMeterProvider(metricnoop.NewMeterProvider()),
	)
	if err != nil {
		log.Fatal(err)
	}
	l1, err := memory.New(memory.Options{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1}, layercache.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for range 2 {
		_, err := layercache.Get(ctx, c, "user:42", func(ctx context.Context) (string, error) {
			return "ada", nil // ctx carries the layercache.load span
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	for _, s := range spans.Ended() {
		var attrs []string
		for _, kv := range s.Attributes() {
			attrs = append(attrs, fmt.Sprintf("%s=%s", kv.Key, kv.Value.Emit()))
		}
		fmt.Println(s.Name(), strings.Join(attrs, " "))
	}
	// Output:
	// layercache.load cache.operation=load cache.result=loaded
	// layercache.get cache.operation=get cache.result=loaded cache.hit=false
	// layercache.get cache.operation=get cache.result=hit cache.hit=true cache.layer=memory
}
