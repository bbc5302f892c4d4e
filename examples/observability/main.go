// Command observability traces and meters a layercache cache with
// OpenTelemetry: spans go to standard output as JSON lines, metrics to a
// Prometheus endpoint, and the cache's own statistics to a JSON debug
// endpoint. It needs no Redis: the cache has one in-process layer.
//
//	go run ./examples/observability          # a few reads, prints, exits
//	go run ./examples/observability -serve   # keeps serving until Ctrl-C
//
// With -serve -addr 127.0.0.1:9464 (the Prometheus exporters' usual port),
// look at
//
//	curl -s http://127.0.0.1:9464/metrics | grep ^cache_
//	curl -s http://127.0.0.1:9464/debug/cache
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	layercacheotel "github.com/layercache/layercache/otel"
)

type Product struct {
	ID    int
	Name  string
	Price float64
}

var errNoDatabase = errors.New("database unavailable")

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address of the metrics and debug endpoints (port 0: any free port)")
	serve := flag.Bool("serve", false, "keep serving the endpoints until interrupted instead of exiting")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *addr, *serve); err != nil {
		log.Fatal(err)
	}
}

// run sets up the providers, the cache and the endpoints, reads through the
// cache and writes what there is to see to out. With serve it then waits
// for ctx to end.
func run(ctx context.Context, out io.Writer, addr string, serve bool) error {

	res := resource.NewSchemaless(attribute.String("service.name", "layercache-example"))

	// Traces: every span as one JSON line on standard output, written as
	// the span ends (a syncer; a real service batches).
	spans, err := stdouttrace.New(stdouttrace.WithWriter(out))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithResource(res))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	// Metrics: pulled by Prometheus from /metrics, from a registry of our
	// own so that only this program's metrics show.
	reg := prometheus.NewRegistry()
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(promExp), sdkmetric.WithResource(res))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	obs, err := layercacheotel.New(
		layercacheotel.WithTracerProvider(tp),
		layercacheotel.WithMeterProvider(mp),
		layercacheotel.WithAttributes(attribute.String("cache.name", "products")),
	)
	if err != nil {
		return err
	}
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		return err
	}
	cache, err := layercache.New([]driver.Layer{l1}, layercache.WithObserver(obs))
	if err != nil {
		return err
	}
	defer cache.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /debug/cache", layercache.StatsHandler(cache))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	base := "http://" + ln.Addr().String()

	fmt.Fprintln(out, "== spans (one JSON object per line) ==")
	if err := workload(ctx, tp, cache); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== metrics ==")
	// The cache's series, less the histogram buckets, which are many.
	if err := show(out, base+"/metrics", func(line string) bool {
		return strings.HasPrefix(line, "cache_") && !strings.Contains(line, "_bucket{")
	}); err != nil {
		return err
	}
	fmt.Fprintln(out, "\n== cache statistics ==")
	if err := show(out, base+"/debug/cache", nil); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nmetrics:     %s/metrics\ncache stats: %s/debug/cache\n", base, base)
	if !serve {
		fmt.Fprintln(out, "(run with -serve to keep these endpoints up)")
		return nil
	}
	fmt.Fprintln(out, "serving; press Ctrl-C to stop")
	<-ctx.Done()
	return nil
}

// workload reads through the cache the way a request handler would, each
// read under a request span of the application's own, so that the cache's
// spans (and the loader's database span under layercache.load) nest in it.
func workload(ctx context.Context, tp *sdktrace.TracerProvider, cache *layercache.Cache) error {
	tracer := tp.Tracer("example/handler")
	loadProduct := func(id int) func(context.Context) (Product, error) {
		return func(ctx context.Context) (Product, error) {
			_, span := tracer.Start(ctx, "db.query products")
			defer span.End()
			time.Sleep(5 * time.Millisecond)
			switch id {
			case 404:
				return Product{}, layercache.ErrNotFound
			case 500:
				return Product{}, errNoDatabase
			}
			return Product{ID: id, Name: fmt.Sprintf("product %d", id), Price: 9.90}, nil
		}
	}
	for _, id := range []int{7, 7, 7, 8, 404, 404, 500} {
		rctx, span := tracer.Start(ctx, "GET /products/{id}")
		_, err := layercache.Get(rctx, cache, fmt.Sprintf("product:%d", id), loadProduct(id),
			layercache.WithTTL(time.Minute), layercache.WithNegativeTTL(10*time.Second))
		span.End()
		if err != nil && !errors.Is(err, layercache.ErrNotFound) && !errors.Is(err, errNoDatabase) {
			return err
		}
	}
	return nil
}

// show writes the body of url to out, or the lines of it that keep
// accepts.
func show(out io.Writer, url string, keep func(string) bool) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(body)), "\n") {
		if keep == nil || keep(line) {
			fmt.Fprintln(out, line)
		}
	}
	return nil
}
