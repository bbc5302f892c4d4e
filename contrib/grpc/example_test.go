package grpccache_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/layercache/layercache"
	grpccache "github.com/layercache/layercache/contrib/grpc"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A health server whose Check answers are cached for a second, and its
// NotFound answers for a tenth of that.
func ExampleUnaryServerInterceptor() {
	l1, _ := memory.New(memory.Options{MaxSize: 1000})
	cache, _ := layercache.New([]driver.Layer{l1})
	defer cache.Close()

	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(
		// authentication and authorization interceptors go here, before the cache
		grpccache.UnaryServerInterceptor(cache, grpccache.Options{Methods: map[string]grpccache.Method{
			healthpb.Health_Check_FullMethodName: {
				TTL:          time.Second,
				Tags:         []string{"health"},
				CachedErrors: map[codes.Code]time.Duration{codes.NotFound: 100 * time.Millisecond},
			},
		}}),
	))
	hs := health.NewServer()
	hs.SetServingStatus("catalog", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for _, service := range []string{"catalog", "catalog", "billing", "billing"} {
		var header metadata.MD
		resp, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service}, grpc.Header(&header))
		fmt.Println(service, resp.GetStatus(), status.Code(err), header.Get(grpccache.Header))
	}
	// Output:
	// catalog SERVING OK [miss]
	// catalog SERVING OK [hit]
	// billing UNKNOWN NotFound [miss]
	// billing UNKNOWN NotFound [hit]
}
