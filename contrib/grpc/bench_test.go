package grpccache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	grpccache "github.com/layercache/layercache/contrib/grpc"
	"github.com/layercache/layercache/contrib/grpc/internal/testpb"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// BenchmarkUnaryCall measures whole unary calls over a real gRPC connection
// (in-memory listener) to a Search handler that computes for handler=… (a
// 0.3 KB response with maps and nested messages). cache=none is the
// baseline, the same server without an interceptor; cache=server-hit is
// answered by the server interceptor, cache=client-hit by the client
// interceptor without a round trip.
//
//	go test -run '^$' -bench UnaryCall ./contrib/grpc
func BenchmarkUnaryCall(b *testing.B) {
	for _, work := range []time.Duration{0, 100 * time.Microsecond} {
		for _, mode := range []string{"none", "server-hit", "client-hit"} {
			for _, parallel := range []bool{false, true} {
				name := fmt.Sprintf("handler=%v/cache=%s", work, mode)
				if parallel {
					name += "/parallel"
				}
				b.Run(name, func(b *testing.B) { benchmarkUnaryCall(b, work, mode, parallel) })
			}
		}
	}
}

func benchmarkUnaryCall(b *testing.B, work time.Duration, mode string, parallel bool) {
	ctx := context.Background()
	cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		spin(work)
		return catalogResponse(ctx, req, 1), nil
	}}
	s := server{register: func(s *grpc.Server) { testpb.RegisterCatalogServer(s, cat) }}
	opts := searchOptions(grpccache.Method{TTL: time.Hour})
	switch mode {
	case "server-hit":
		s.interceptors = []grpc.UnaryServerInterceptor{grpccache.UnaryServerInterceptor(newCache(b), opts)}
	case "client-hit":
		s.dialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(grpccache.UnaryClientInterceptor(newCache(b), opts))}
	}
	client := testpb.NewCatalogClient(s.start(b))
	req := filteredRequest([]int{1, 2, 3, 4})
	if _, err := client.Search(ctx, req); err != nil { // warm the cache
		b.Fatal(err)
	}
	calls := cat.calls.Load()

	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.Search(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if _, err := client.Search(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportMicroseconds(b)
	if mode != "none" && cat.calls.Load() != calls {
		b.Fatalf("the handler ran %d times during a benchmark of hits", cat.calls.Load()-calls)
	}
}

// BenchmarkUnaryCallInterleaved makes the claim of BenchmarkUnaryCall
// robust to a machine whose load changes during the run: each iteration
// makes one call to a server without the interceptor and one to a server
// whose interceptor answers from the cache, both over a real gRPC
// connection to the same handler, and times each. It reports the mean of
// each and their ratio (cached/uncached below 1 means the cache pays).
//
//	go test -run '^$' -bench UnaryCallInterleaved ./contrib/grpc
func BenchmarkUnaryCallInterleaved(b *testing.B) {
	for _, work := range []time.Duration{0, 100 * time.Microsecond} {
		b.Run(fmt.Sprintf("handler=%v", work), func(b *testing.B) {
			ctx := context.Background()
			cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
				spin(work)
				return catalogResponse(ctx, req, 1), nil
			}}
			register := func(s *grpc.Server) { testpb.RegisterCatalogServer(s, cat) }
			uncached := testpb.NewCatalogClient(server{register: register}.start(b))
			cached := testpb.NewCatalogClient(server{
				register:     register,
				interceptors: []grpc.UnaryServerInterceptor{grpccache.UnaryServerInterceptor(newCache(b), searchOptions(grpccache.Method{TTL: time.Hour}))},
			}.start(b))
			req := filteredRequest([]int{1, 2, 3, 4})
			for _, c := range []testpb.CatalogClient{uncached, cached} { // warm both
				if _, err := c.Search(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			timed := func(c testpb.CatalogClient) time.Duration {
				start := time.Now()
				if _, err := c.Search(ctx, req); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			var tUncached, tCached time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 { // alternate which goes first
					tUncached += timed(uncached)
					tCached += timed(cached)
				} else {
					tCached += timed(cached)
					tUncached += timed(uncached)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(tUncached.Nanoseconds())/n/1e3, "uncached-µs/call")
			b.ReportMetric(float64(tCached.Nanoseconds())/n/1e3, "cached-µs/call")
			b.ReportMetric(float64(tCached)/float64(tUncached), "cached/uncached")
		})
	}
}

// BenchmarkServerInterceptorHit measures what the server interceptor adds to
// a call it answers from the cache (an in-process layer): the request's
// deterministic encoding and hash, the lookup, the decoding into a new
// response, the x-cache header. The interceptor is called directly, without
// gRPC around it. path=handler is the baseline, a handler that returns a
// ready response; path=unlisted is the interceptor on a method it does not
// cache. msg=health is the health check (a one-field request and
// response), msg=catalog a Search with two 4-entry maps in the request and
// maps and nested messages in a 0.3 KB response.
//
//	go test -run '^$' -bench ServerInterceptorHit ./contrib/grpc
func BenchmarkServerInterceptorHit(b *testing.B) {
	for _, msg := range []string{"health", "catalog"} {
		for _, path := range []string{"handler", "unlisted", "hit"} {
			for _, parallel := range []bool{false, true} {
				name := "msg=" + msg + "/path=" + path
				if parallel {
					name += "/parallel"
				}
				b.Run(name, func(b *testing.B) { benchmarkServerInterceptor(b, msg, path, parallel) })
			}
		}
	}
}

func benchmarkServerInterceptor(b *testing.B, msg, path string, parallel bool) {
	var (
		req, ready proto.Message
		method     string
	)
	switch msg {
	case "health":
		req = &healthpb.HealthCheckRequest{Service: "catalog"}
		ready = &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
		method = healthpb.Health_Check_FullMethodName
	default:
		search := filteredRequest([]int{1, 2, 3, 4})
		req, ready = search, catalogResponse(context.Background(), search, 1)
		method = testpb.Catalog_Search_FullMethodName
	}
	handler := func(context.Context, any) (any, error) { return ready, nil }
	intercept := grpccache.UnaryServerInterceptor(newCache(b), grpccache.Options{Methods: map[string]grpccache.Method{
		method: {TTL: time.Hour},
	}})
	info := &grpc.UnaryServerInfo{FullMethod: method}
	if path == "unlisted" {
		info = &grpc.UnaryServerInfo{FullMethod: healthpb.Health_List_FullMethodName}
	}
	call := func(ctx context.Context) {
		var err error
		if path == "handler" {
			_, err = handler(ctx, req)
		} else {
			_, err = intercept(ctx, req, info, handler)
		}
		if err != nil {
			b.Error(err)
		}
	}
	newCtx := func() context.Context {
		return grpc.NewContextWithServerTransportStream(context.Background(), &headerStream{})
	}
	call(newCtx()) // warm the cache

	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			ctx := newCtx()
			for pb.Next() {
				call(ctx)
			}
		})
	} else {
		ctx := newCtx()
		for b.Loop() {
			call(ctx)
		}
	}
	reportMicroseconds(b)
}

// headerStream stands in for gRPC's stream, so that grpc.SetHeader does
// its work outside a server.
type headerStream struct{ header metadata.MD }

func (s *headerStream) Method() string                  { return testpb.Catalog_Search_FullMethodName }
func (s *headerStream) SetHeader(md metadata.MD) error  { s.header = md; return nil }
func (s *headerStream) SendHeader(md metadata.MD) error { s.header = md; return nil }
func (s *headerStream) SetTrailer(metadata.MD) error    { return nil }

// spin keeps the handler busy for d, as a handler that computes its answer
// does. (A sleep would measure the timer's resolution, which on a loaded
// machine is far coarser than 100µs.)
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

func reportMicroseconds(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/op")
	}
}
