package grpccache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/layercache/layercache"
	grpccache "github.com/layercache/layercache/contrib/grpc"
	"github.com/layercache/layercache/contrib/grpc/internal/testpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// remoteCatalog serves cat without caching and returns a client whose
// connection caches with the client interceptor.
func remoteCatalog(t *testing.T, c *layercache.Cache, o grpccache.Options, cat *catalog) testpb.CatalogClient {
	conn := server{
		register:    func(s *grpc.Server) { testpb.RegisterCatalogServer(s, cat) },
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(grpccache.UnaryClientInterceptor(c, o))},
	}.start(t)
	return testpb.NewCatalogClient(conn)
}

func TestClientInterceptor_RepeatedCallsMakeOneRoundTrip(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := remoteCatalog(t, c, searchOptions(grpccache.Method{TTL: time.Hour, Tags: []string{"remote-catalog"}}), cat)

	req := filteredRequest([]int{5, 3, 8, 1})
	want := catalogResponse(ctx, req, 1)
	for i, order := range [][]int{{5, 3, 8, 1}, {1, 3, 5, 8}, {8, 5, 3, 1}} {
		resp, err := client.Search(ctx, filteredRequest(order))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(resp, want) {
			t.Fatalf("call %d: %v; want %v", i, resp, want)
		}
	}
	if n := cat.calls.Load(); n != 1 {
		t.Fatalf("%d round trips for equal requests; want 1", n)
	}

	if err := c.InvalidateTags(ctx, "remote-catalog"); err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Search(ctx, req); err != nil || resp.GetGeneration() != 2 {
		t.Fatalf("after invalidation: %v, %v; want a new round trip", resp, err)
	}
}

func TestClientInterceptor_ConcurrentIdenticalCallsMakeOneRoundTrip(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	const callers = 50
	release := make(chan struct{})
	cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		<-release
		return catalogResponse(ctx, req, gen), nil
	}}
	client := remoteCatalog(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	req := &testpb.SearchRequest{Query: "shelf", Page: &testpb.Page{Size: 5}}

	var wg sync.WaitGroup
	resps := make([]*testpb.SearchResponse, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { resps[i], errs[i] = client.Search(ctx, req) })
	}
	waitFor(t, "calls waiting for the first", func() bool { return c.Stats().Deduplicated >= callers-1 })
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || !proto.Equal(resps[i], catalogResponse(ctx, req, 1)) {
			t.Fatalf("call %d: %v, %v", i, resps[i], errs[i])
		}
	}
	if n := cat.calls.Load(); n != 1 {
		t.Fatalf("%d round trips; want 1", n)
	}
}

func TestClientInterceptor_CachesListedErrorsOnly(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		switch req.GetQuery() {
		case "missing":
			return nil, status.Error(codes.NotFound, "no such product")
		case "flaky":
			return nil, status.Error(codes.Unavailable, "try again")
		}
		return catalogResponse(ctx, req, gen), nil
	}}
	client := remoteCatalog(t, c, searchOptions(grpccache.Method{
		TTL:          time.Hour,
		CachedErrors: map[codes.Code]time.Duration{codes.NotFound: time.Hour},
	}), cat)
	for range 3 {
		_, err := client.Search(ctx, &testpb.SearchRequest{Query: "missing"})
		if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such product" {
			t.Fatalf("missing: %v", err)
		}
	}
	for range 3 {
		if _, err := client.Search(ctx, &testpb.SearchRequest{Query: "flaky"}); status.Code(err) != codes.Unavailable {
			t.Fatalf("flaky: %v", err)
		}
	}
	if n := cat.calls.Load(); n != 4 {
		t.Fatalf("%d round trips; want 4 (one NotFound, then every Unavailable)", n)
	}
}

// staticToken is per-call credentials for a connection without TLS.
type staticToken string

func (s staticToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(s)}, nil
}

func (staticToken) RequireTransportSecurity() bool { return false }

func TestClientInterceptor_CallsWithCredentialsBypassTheCacheWithoutIdentity(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := remoteCatalog(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	req := &testpb.SearchRequest{Query: "invoices"}

	calls := []struct {
		name string
		ctx  context.Context
		opts []grpc.CallOption
		want string
	}{
		{"authorization metadata", withBearer(ctx, "alice"), nil, "alice"},
		{"authorization metadata again", withBearer(ctx, "alice"), nil, "alice"},
		{"per-call credentials", ctx, []grpc.CallOption{grpc.PerRPCCredentials(staticToken("bob"))}, "bob"},
		{"per-call credentials again", ctx, []grpc.CallOption{grpc.PerRPCCredentials(staticToken("bob"))}, "bob"},
	}
	for i, call := range calls {
		resp, err := client.Search(call.ctx, req, call.opts...)
		if err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
		if resp.GetCaller() != call.want || resp.GetGeneration() != int64(i+1) {
			t.Fatalf("%s: caller %q, generation %d; want %q, %d (a round trip)", call.name, resp.GetCaller(), resp.GetGeneration(), call.want, i+1)
		}
	}
}

func TestClientInterceptor_IdentityKeepsEachCallersEntriesApart(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	outgoingUser := func(ctx context.Context) (string, error) {
		md, _ := metadata.FromOutgoingContext(ctx)
		if v := md.Get("authorization"); len(v) > 0 {
			return v[0], nil
		}
		return "", nil
	}
	client := remoteCatalog(t, c, searchOptions(grpccache.Method{TTL: time.Hour, Identity: outgoingUser}), cat)
	req := &testpb.SearchRequest{Query: "invoices"}
	for i, step := range []struct {
		user    string
		wantGen int64
	}{{"alice", 1}, {"bob", 2}, {"alice", 1}, {"bob", 2}} {
		resp, err := client.Search(withBearer(ctx, step.user), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetCaller() != step.user || resp.GetGeneration() != step.wantGen {
			t.Fatalf("step %d (%s): caller %q, generation %d; want generation %d", i, step.user, resp.GetCaller(), resp.GetGeneration(), step.wantGen)
		}
	}
}

// A process that both serves a method and calls it, with one cache, keeps
// the two sides' entries apart: the client serves only what it cached.
func TestClientInterceptor_ServesOnlyWhatItCachedItself(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	conn := server{
		interceptors: []grpc.UnaryServerInterceptor{grpccache.UnaryServerInterceptor(c,
			searchOptions(grpccache.Method{TTL: time.Hour, Tags: []string{"server-side"}}))},
		register: func(s *grpc.Server) { testpb.RegisterCatalogServer(s, cat) },
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(grpccache.UnaryClientInterceptor(c,
			searchOptions(grpccache.Method{TTL: time.Hour, Tags: []string{"client-side"}})))},
	}.start(t)
	client := testpb.NewCatalogClient(conn)
	req := &testpb.SearchRequest{Query: "mirror"}

	call := func() (gen int64, header []string) {
		t.Helper()
		var md metadata.MD
		resp, err := client.Search(ctx, req, grpc.Header(&md))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetGeneration(), md.Get(grpccache.Header)
	}
	if gen, h := call(); gen != 1 || len(h) != 1 || h[0] != "miss" {
		t.Fatalf("first call: generation %d, server x-cache %v", gen, h)
	}
	if gen, h := call(); gen != 1 || len(h) != 0 {
		t.Fatalf("second call: generation %d, x-cache %v; want the client's entry, no round trip", gen, h)
	}
	// Without its own entry the client goes to the server, even though the
	// same cache holds the server's.
	if err := c.InvalidateTags(ctx, "client-side"); err != nil {
		t.Fatal(err)
	}
	if gen, h := call(); gen != 1 || len(h) != 1 || h[0] != "hit" {
		t.Fatalf("after dropping the client's entry: generation %d, server x-cache %v; want a round trip the server answers from its entry", gen, h)
	}
	if err := c.InvalidateTags(ctx, "server-side"); err != nil {
		t.Fatal(err)
	}
	if gen, h := call(); gen != 1 || len(h) != 0 {
		t.Fatalf("after dropping the server's entry: generation %d, x-cache %v; want the client's entry", gen, h)
	}
	if n := cat.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times", n)
	}
}
