package grpccache_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/contrib/grpc/internal/testpb"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCache returns a cache on one memory layer, closed at the end of the
// test.
func newCache(t testing.TB, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// server is a real gRPC server on an in-memory listener.
type server struct {
	interceptors []grpc.UnaryServerInterceptor
	dialOptions  []grpc.DialOption
	register     func(*grpc.Server)
}

// start serves s and returns a client connection to it; both are closed
// at the end of the test.
func (s server) start(t testing.TB) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(s.interceptors...))
	s.register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	dial := append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, s.dialOptions...)
	conn, err := grpc.NewClient("passthrough:///bufnet", dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-served
	})
	return conn
}

// countCalls counts the calls that reach the handler; chained after the
// cache interceptor, it counts the handler runs the cache did not save.
func countCalls(n *atomic.Int64) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		n.Add(1)
		return handler(ctx, req)
	}
}

// catalog is the test service. Each Search call gets the next generation
// number, so a response computed by the handler can be told from one served
// again.
type catalog struct {
	testpb.UnimplementedCatalogServer
	calls  atomic.Int64
	search func(ctx context.Context, req *testpb.SearchRequest, generation int64) (*testpb.SearchResponse, error)
}

func (s *catalog) Search(ctx context.Context, req *testpb.SearchRequest) (*testpb.SearchResponse, error) {
	n := s.calls.Add(1)
	if s.search != nil {
		return s.search(ctx, req, n)
	}
	return catalogResponse(ctx, req, n), nil
}

// catalogResponse builds a response that uses every shape of the test
// proto: maps of scalars and messages, nested and repeated messages, a
// oneof, an optional field, bytes and a timestamp.
func catalogResponse(ctx context.Context, req *testpb.SearchRequest, generation int64) *testpb.SearchResponse {
	rating := 4.5
	variant := &testpb.Item{
		Id:           req.GetQuery() + "-small",
		Title:        "small",
		PriceCents:   1 << 40,
		Availability: &testpb.Item_BackorderUntil{BackorderUntil: "2030-01-01"},
	}
	item := &testpb.Item{
		Id:           req.GetQuery() + "-1",
		Title:        "result for " + req.GetQuery(),
		PriceCents:   1999,
		Attributes:   map[string]string{"colour": "red", "size": "M", "": "empty key"},
		Variants:     []*testpb.Item{variant, {Id: "bare"}},
		Updated:      timestamppb.New(time.Date(2024, 2, 29, 12, 30, 0, 123456789, time.UTC)),
		Thumbnail:    []byte{0, 1, 2, 0xff},
		Availability: &testpb.Item_InStock{InStock: 0},
		Rating:       &rating,
	}
	resp := &testpb.SearchResponse{
		Items: []*testpb.Item{item},
		Facets: map[string]*testpb.Facet{
			"colour": {Counts: map[string]int64{"red": 3, "blue": -1}},
			"empty":  {},
		},
		Next:       &testpb.Page{Size: req.GetPage().GetSize(), Token: "next"},
		Generation: generation,
	}
	if auth := metadata.ValueFromIncomingContext(ctx, "authorization"); len(auth) > 0 {
		resp.Caller = strings.TrimPrefix(auth[0], "Bearer ")
	}
	return resp
}

// bearerIdentity is an Identity function: the caller is the bearer token's
// subject, or anonymous.
func bearerIdentity(ctx context.Context) (string, error) {
	auth := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(auth) == 0 {
		return "", nil
	}
	user, ok := strings.CutPrefix(auth[0], "Bearer ")
	if !ok || user == "" {
		return "", fmt.Errorf("malformed authorization")
	}
	return user, nil
}

// waitFor polls cond until it holds, and fails the test if a generous
// deadline passes first.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds (true) or a generous deadline passes
// (false). Handlers use it, since they may not fail the test themselves.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// cacheHeader returns the x-cache header of a call's response header.
func cacheHeader(md metadata.MD) string {
	v := md.Get("x-cache")
	if len(v) != 1 {
		return fmt.Sprint(v)
	}
	return v[0]
}
