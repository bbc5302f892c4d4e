package grpccache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	grpccache "github.com/layercache/layercache/contrib/grpc"
	"github.com/layercache/layercache/contrib/grpc/internal/testpb"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// healthServer serves the standard health service behind the cache
// interceptor; calls counts the calls that reached the health server.
func healthServer(t *testing.T, c *layercache.Cache, o grpccache.Options) (healthpb.HealthClient, *health.Server, *atomic.Int64) {
	hs := health.NewServer()
	calls := new(atomic.Int64)
	conn := server{
		interceptors: []grpc.UnaryServerInterceptor{grpccache.UnaryServerInterceptor(c, o), countCalls(calls)},
		register:     func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) },
	}.start(t)
	return healthpb.NewHealthClient(conn), hs, calls
}

// catalogServer serves cat behind the cache interceptor.
func catalogServer(t *testing.T, c *layercache.Cache, o grpccache.Options, cat *catalog) testpb.CatalogClient {
	conn := server{
		interceptors: []grpc.UnaryServerInterceptor{grpccache.UnaryServerInterceptor(c, o)},
		register:     func(s *grpc.Server) { testpb.RegisterCatalogServer(s, cat) },
	}.start(t)
	return testpb.NewCatalogClient(conn)
}

func searchOptions(m grpccache.Method) grpccache.Options {
	return grpccache.Options{Methods: map[string]grpccache.Method{testpb.Catalog_Search_FullMethodName: m}}
}

// search calls Search and returns the response and the x-cache header.
func search(t *testing.T, ctx context.Context, client testpb.CatalogClient, req *testpb.SearchRequest) (*testpb.SearchResponse, string) {
	t.Helper()
	var md metadata.MD
	resp, err := client.Search(ctx, req, grpc.Header(&md))
	if err != nil {
		t.Fatalf("Search(%v): %v", req, err)
	}
	return resp, cacheHeader(md)
}

func TestServerInterceptor_HealthCheckMissThenHitUntilInvalidated(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	client, hs, calls := healthServer(t, c, grpccache.Options{Methods: map[string]grpccache.Method{
		healthpb.Health_Check_FullMethodName: {TTL: time.Hour, Tags: []string{"health"}},
	}})
	hs.SetServingStatus("catalog", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)

	check := func(service string) (healthpb.HealthCheckResponse_ServingStatus, string) {
		t.Helper()
		var md metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.Header(&md))
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return resp.GetStatus(), cacheHeader(md)
	}
	expect := func(service string, wantStatus healthpb.HealthCheckResponse_ServingStatus, wantHeader string, wantCalls int64) {
		t.Helper()
		st, h := check(service)
		if st != wantStatus || h != wantHeader || calls.Load() != wantCalls {
			t.Fatalf("Check(%q) = %v, x-cache %s, after %d handler calls; want %v, %s, %d",
				service, st, h, calls.Load(), wantStatus, wantHeader, wantCalls)
		}
	}

	expect("catalog", healthpb.HealthCheckResponse_SERVING, "miss", 1)
	hs.SetServingStatus("catalog", healthpb.HealthCheckResponse_NOT_SERVING)
	expect("catalog", healthpb.HealthCheckResponse_SERVING, "hit", 1) // served from the cache
	expect("orders", healthpb.HealthCheckResponse_SERVING, "miss", 2) // another request, another entry
	expect("orders", healthpb.HealthCheckResponse_SERVING, "hit", 2)

	if err := c.InvalidateTags(ctx, "health"); err != nil {
		t.Fatal(err)
	}
	expect("catalog", healthpb.HealthCheckResponse_NOT_SERVING, "miss", 3)
	expect("catalog", healthpb.HealthCheckResponse_NOT_SERVING, "hit", 3)
}

func TestServerInterceptor_MethodsNotListedPassThrough(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	client, hs, calls := healthServer(t, c, grpccache.Options{Methods: map[string]grpccache.Method{
		healthpb.Health_Check_FullMethodName: {TTL: time.Hour},
	}})
	hs.SetServingStatus("catalog", healthpb.HealthCheckResponse_SERVING)
	for i := range 3 {
		var md metadata.MD
		resp, err := client.List(ctx, &healthpb.HealthListRequest{}, grpc.Header(&md))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetStatuses()["catalog"].GetStatus(); got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("List: catalog is %v", got)
		}
		if v := md.Get(grpccache.Header); len(v) != 0 {
			t.Fatalf("List, a method not listed, has x-cache %v", v)
		}
		if calls.Load() != int64(i+1) {
			t.Fatalf("after %d List calls the handler ran %d times", i+1, calls.Load())
		}
	}
}

func TestServerInterceptor_HitHasTheResponseTypeAndEveryField(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	req := &testpb.SearchRequest{Query: "lamp", Page: &testpb.Page{Size: 20}}
	want := catalogResponse(ctx, req, 1)

	first, h1 := search(t, ctx, client, req)
	second, h2 := search(t, ctx, client, req)
	if h1 != "miss" || h2 != "hit" || cat.calls.Load() != 1 {
		t.Fatalf("x-cache %s then %s after %d handler calls; want miss then hit after 1", h1, h2, cat.calls.Load())
	}
	for i, got := range []*testpb.SearchResponse{first, second} {
		if !proto.Equal(got, want) {
			t.Fatalf("response %d differs from the handler's:\n got %v\nwant %v", i+1, got, want)
		}
	}
	// Fields whose zero value is set on purpose survive: a oneof holding 0,
	// a map entry with an empty key, an empty map-valued message.
	item := second.GetItems()[0]
	if _, ok := item.GetAvailability().(*testpb.Item_InStock); !ok {
		t.Fatalf("oneof lost: %T", item.GetAvailability())
	}
	if item.Rating == nil || item.GetAttributes()[""] != "empty key" || second.GetFacets()["empty"] == nil {
		t.Fatalf("fields lost on a hit: %v", second)
	}
}

// The interceptor called directly shows what the server hands to gRPC: a
// new message of the method's own type on every hit, sharing nothing with
// the cache.
func TestServerInterceptor_HitIsAFreshMessageOfTheMethodsType(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	intercept := grpccache.UnaryServerInterceptor(c, searchOptions(grpccache.Method{TTL: time.Hour}))
	info := &grpc.UnaryServerInfo{FullMethod: testpb.Catalog_Search_FullMethodName}
	req := &testpb.SearchRequest{Query: "desk"}
	want := catalogResponse(ctx, req, 1)
	ran := 0
	handler := func(ctx context.Context, req any) (any, error) {
		ran++
		return catalogResponse(ctx, req.(*testpb.SearchRequest), int64(ran)), nil
	}

	first, err := intercept(ctx, req, info, handler)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := intercept(ctx, req, info, handler)
		if err != nil {
			t.Fatal(err)
		}
		resp, ok := got.(*testpb.SearchResponse)
		if !ok {
			t.Fatalf("hit %d is a %T, not a *testpb.SearchResponse", i, got)
		}
		if resp == first || !proto.Equal(resp, want) || ran != 1 {
			t.Fatalf("hit %d: same object %v, equal %v, handler ran %d times", i, resp == first, proto.Equal(resp, want), ran)
		}
		// A caller that changes what it got changes nothing for the next.
		resp.Items[0].Thumbnail[0] = 42
		resp.Items[0].Attributes["colour"] = "changed"
		resp.Facets["colour"].Counts["red"] = 0
	}
	first.(*testpb.SearchResponse).Items[0].Title = "changed"
	got, err := intercept(ctx, req, info, handler)
	if err != nil || !proto.Equal(got.(*testpb.SearchResponse), want) {
		t.Fatalf("after callers changed their copies: %v, %v", got, err)
	}
}

// filteredRequest fills the request's maps in the given order.
func filteredRequest(order []int) *testpb.SearchRequest {
	req := &testpb.SearchRequest{
		Query:       "chair",
		Filters:     make(map[string]string),
		PriceRanges: make(map[int32]*testpb.Range),
	}
	for _, i := range order {
		req.Filters[fmt.Sprintf("filter-%02d", i)] = fmt.Sprint("value-", i)
		req.PriceRanges[int32(i)] = &testpb.Range{Min: int64(i), Max: int64(10 * i)}
	}
	return req
}

func TestServerInterceptor_EqualRequestsWithMapsFilledInAnotherOrderHit(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)

	const n = 64 // enough entries that two random map orders virtually never agree
	ascending := make([]int, n)
	for i := range ascending {
		ascending[i] = i
	}
	descending := make([]int, n)
	for i := range descending {
		descending[i] = n - 1 - i
	}
	if _, h := search(t, ctx, client, filteredRequest(ascending)); h != "miss" {
		t.Fatalf("first call: x-cache %s", h)
	}
	orders := [][]int{descending}
	for range 5 {
		shuffled := append([]int(nil), ascending...)
		rand.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		orders = append(orders, shuffled)
	}
	for i, order := range orders {
		resp, h := search(t, ctx, client, filteredRequest(order))
		if h != "hit" || resp.GetGeneration() != 1 {
			t.Fatalf("equal request %d, maps filled in another order: x-cache %s, generation %d", i, h, resp.GetGeneration())
		}
	}
	changed := filteredRequest(descending)
	changed.PriceRanges[7].Max++
	if resp, h := search(t, ctx, client, changed); h != "miss" || resp.GetGeneration() != 2 {
		t.Fatalf("a request differing in one nested map value: x-cache %s, generation %d", h, resp.GetGeneration())
	}
	if cat.calls.Load() != 2 {
		t.Fatalf("handler ran %d times; want 2", cat.calls.Load())
	}
}

func TestServerInterceptor_ConcurrentIdenticalMissesRunTheHandlerOnce(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	release := make(chan struct{})
	cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return catalogResponse(ctx, req, gen), nil
	}}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	req := &testpb.SearchRequest{Query: "sofa", Filters: map[string]string{"colour": "green", "legs": "4"}}

	const callers = 50
	var wg sync.WaitGroup
	resps := make([]*testpb.SearchResponse, callers)
	headers := make([]metadata.MD, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { resps[i], errs[i] = client.Search(ctx, req, grpc.Header(&headers[i])) })
	}
	// Every call but the one running the handler waits for it before the
	// handler may finish.
	waitFor(t, "49 calls waiting for the first", func() bool { return c.Stats().Deduplicated >= callers-1 })
	close(release)
	wg.Wait()

	hits, misses := 0, 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !proto.Equal(resps[i], catalogResponse(ctx, req, 1)) {
			t.Fatalf("call %d got %v", i, resps[i])
		}
		switch cacheHeader(headers[i]) {
		case "hit":
			hits++
		case "miss":
			misses++
		}
	}
	if n := cat.calls.Load(); n != 1 {
		t.Fatalf("%d concurrent identical calls ran the handler %d times; want 1", callers, n)
	}
	if misses != 1 || hits != callers-1 {
		t.Fatalf("x-cache: %d miss, %d hit; want 1 and %d", misses, hits, callers-1)
	}
}

func TestServerInterceptor_ErrorsNotListedAreNotCachedAndReachEveryWaitingCall(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	const callers = 10
	cat := &catalog{}
	cat.search = func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		if gen == 1 {
			if !eventually(func() bool { return c.Stats().Deduplicated >= callers-1 }) {
				return nil, status.Error(codes.Internal, "the other calls never waited for this one")
			}
			return nil, status.Error(codes.Unavailable, "inventory backend down")
		}
		return catalogResponse(ctx, req, gen), nil
	}
	client := catalogServer(t, c, searchOptions(grpccache.Method{
		TTL:          time.Hour,
		CachedErrors: map[codes.Code]time.Duration{codes.NotFound: time.Hour},
	}), cat)
	req := &testpb.SearchRequest{Query: "table"}

	var wg sync.WaitGroup
	errs := make([]error, callers)
	headers := make([]metadata.MD, callers)
	for i := range callers {
		wg.Go(func() { _, errs[i] = client.Search(ctx, req, grpc.Header(&headers[i])) })
	}
	wg.Wait()
	for i, err := range errs {
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || st.Message() != "inventory backend down" {
			t.Fatalf("call %d got %v; want the handler's own Unavailable status", i, err)
		}
		if h := cacheHeader(headers[i]); h != "miss" {
			t.Fatalf("call %d, failed with an error that is not cached: x-cache %s", i, h)
		}
	}
	if n := cat.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times for %d identical concurrent calls", n, callers)
	}

	resp, h := search(t, ctx, client, req)
	if h != "miss" || resp.GetGeneration() != 2 {
		t.Fatalf("the call after the error: x-cache %s, generation %d; want a fresh run", h, resp.GetGeneration())
	}
	if resp, h := search(t, ctx, client, req); h != "hit" || resp.GetGeneration() != 2 {
		t.Fatalf("then: x-cache %s, generation %d; want the response cached", h, resp.GetGeneration())
	}
}

func TestServerInterceptor_CallCancelledWhileRunningTheHandlerDoesNotFailTheWaitingCalls(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	started := make(chan struct{})
	cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		if gen == 1 {
			close(started)
			<-ctx.Done() // the first caller gives up
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return catalogResponse(ctx, req, gen), nil
	}}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	req := &testpb.SearchRequest{Query: "rug"}

	firstCtx, cancelFirst := context.WithCancel(ctx)
	firstErr := make(chan error, 1)
	go func() {
		_, err := client.Search(firstCtx, req)
		firstErr <- err
	}()
	<-started

	const waiting = 5
	var wg sync.WaitGroup
	resps := make([]*testpb.SearchResponse, waiting)
	errs := make([]error, waiting)
	for i := range waiting {
		wg.Go(func() { resps[i], errs[i] = client.Search(ctx, req) })
	}
	waitFor(t, "calls waiting for the first", func() bool { return c.Stats().Deduplicated >= waiting })
	cancelFirst()
	wg.Wait()

	if err := <-firstErr; status.Code(err) != codes.Canceled {
		t.Fatalf("the cancelled call got %v; want Canceled", err)
	}
	for i := range waiting {
		if errs[i] != nil || resps[i].GetGeneration() != 2 {
			t.Fatalf("waiting call %d got %v, %v; want the response of a second run", i, resps[i], errs[i])
		}
	}
	if n := cat.calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times; want 2 (the cancelled run and one for the waiting calls)", n)
	}
}

func TestServerInterceptor_ListedCodesAreCachedForTheirOwnTTL(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	client, hs, calls := healthServer(t, c, grpccache.Options{Methods: map[string]grpccache.Method{
		healthpb.Health_Check_FullMethodName: {
			TTL:          time.Hour,
			CachedErrors: map[codes.Code]time.Duration{codes.NotFound: 50 * time.Millisecond},
		},
	}})
	check := func() (*healthpb.HealthCheckResponse, string, error) {
		var md metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "billing"}, grpc.Header(&md))
		return resp, cacheHeader(md), err
	}
	for i, want := range []string{"miss", "hit"} {
		_, h, err := check()
		if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "unknown service" || h != want {
			t.Fatalf("call %d: %v, x-cache %s; want NotFound \"unknown service\", %s", i, err, h, want)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times; want the NotFound cached", calls.Load())
	}

	// The service appears; the cached NotFound ends after its own 50ms,
	// not the method's hour.
	hs.SetServingStatus("billing", healthpb.HealthCheckResponse_SERVING)
	waitFor(t, "the cached NotFound to expire", func() bool {
		resp, _, err := check()
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	})
	if calls.Load() != 2 {
		t.Fatalf("handler ran %d times; want once more after the error expired", calls.Load())
	}
	if _, h, err := check(); err != nil || h != "hit" {
		t.Fatalf("after the expiry: %v, x-cache %s; want the response cached", err, h)
	}
}

func TestServerInterceptor_CachedErrorKeepsCodeMessageAndDetails(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{search: func(ctx context.Context, req *testpb.SearchRequest, gen int64) (*testpb.SearchResponse, error) {
		switch req.GetQuery() {
		case "discontinued":
			st, err := status.New(codes.NotFound, "no such product").WithDetails(&errdetails.ResourceInfo{
				ResourceType: "product", ResourceName: "discontinued", Description: fmt.Sprint("run ", gen),
			})
			if err != nil {
				return nil, err
			}
			return nil, st.Err()
		case "throttled":
			return nil, status.Error(codes.ResourceExhausted, "slow down")
		}
		return catalogResponse(ctx, req, gen), nil
	}}
	client := catalogServer(t, c, searchOptions(grpccache.Method{
		TTL:          time.Hour,
		CachedErrors: map[codes.Code]time.Duration{codes.NotFound: time.Hour},
	}), cat)

	var statuses []*status.Status
	for i, want := range []string{"miss", "hit", "hit"} {
		var md metadata.MD
		_, err := client.Search(ctx, &testpb.SearchRequest{Query: "discontinued"}, grpc.Header(&md))
		if h := cacheHeader(md); h != want {
			t.Fatalf("call %d: x-cache %s; want %s", i, h, want)
		}
		statuses = append(statuses, status.Convert(err))
	}
	for i, st := range statuses {
		details := st.Details()
		if st.Code() != codes.NotFound || st.Message() != "no such product" || len(details) != 1 {
			t.Fatalf("call %d: %v with details %v", i, st, details)
		}
		if info, ok := details[0].(*errdetails.ResourceInfo); !ok || info.GetDescription() != "run 1" {
			t.Fatalf("call %d: details %v; want the first run's ResourceInfo", i, details)
		}
	}
	// A code that is not listed is not cached, on the same method.
	for range 2 {
		if _, err := client.Search(ctx, &testpb.SearchRequest{Query: "throttled"}); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("throttled: %v", err)
		}
	}
	if n := cat.calls.Load(); n != 3 {
		t.Fatalf("handler ran %d times; want 3 (one NotFound, two ResourceExhausted)", n)
	}
}

func withBearer(ctx context.Context, user string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+user)
}

func TestServerInterceptor_CallsWithAuthorizationBypassTheCacheWithoutIdentity(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	req := &testpb.SearchRequest{Query: "account"}

	for i := range 2 {
		var md metadata.MD
		resp, err := client.Search(withBearer(ctx, "alice"), req, grpc.Header(&md))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetCaller() != "alice" || resp.GetGeneration() != int64(i+1) || len(md.Get(grpccache.Header)) != 0 {
			t.Fatalf("call %d with authorization: caller %q, generation %d, x-cache %v; want the handler's answer, uncached",
				i, resp.GetCaller(), resp.GetGeneration(), md.Get(grpccache.Header))
		}
	}
	// An anonymous call is cached, and never served to an authorized one.
	if resp, h := search(t, ctx, client, req); h != "miss" || resp.GetCaller() != "" {
		t.Fatalf("anonymous: x-cache %s, caller %q", h, resp.GetCaller())
	}
	if resp, h := search(t, ctx, client, req); h != "hit" || resp.GetCaller() != "" {
		t.Fatalf("anonymous again: x-cache %s, caller %q", h, resp.GetCaller())
	}
	if resp, h := search(t, withBearer(ctx, "bob"), client, req); h != "[]" || resp.GetCaller() != "bob" {
		t.Fatalf("bob after the anonymous entry: x-cache %s, caller %q", h, resp.GetCaller())
	}
}

func TestServerInterceptor_IdentityKeepsEachCallersEntriesApart(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour, Identity: bearerIdentity}), cat)
	req := &testpb.SearchRequest{Query: "orders"}

	steps := []struct {
		ctx        context.Context
		wantCaller string
		wantHeader string
		wantGen    int64
	}{
		{withBearer(ctx, "alice"), "alice", "miss", 1},
		{withBearer(ctx, "alice"), "alice", "hit", 1},
		{withBearer(ctx, "bob"), "bob", "miss", 2},
		{withBearer(ctx, "alice"), "alice", "hit", 1},
		{withBearer(ctx, "bob"), "bob", "hit", 2},
		{ctx, "", "miss", 3}, // anonymous has its own entry
		{ctx, "", "hit", 3},
	}
	for i, s := range steps {
		resp, h := search(t, s.ctx, client, req)
		if resp.GetCaller() != s.wantCaller || h != s.wantHeader || resp.GetGeneration() != s.wantGen {
			t.Fatalf("step %d: caller %q, x-cache %s, generation %d; want %q, %s, %d",
				i, resp.GetCaller(), h, resp.GetGeneration(), s.wantCaller, s.wantHeader, s.wantGen)
		}
	}
	// Credentials Identity cannot read are not cached.
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Basic YWxpY2U6c2VjcmV0")
	for range 2 {
		if _, h := search(t, bad, client, req); h != "[]" {
			t.Fatalf("call whose identity failed: x-cache %s; want no header (bypassed)", h)
		}
	}
	if n := cat.calls.Load(); n != 5 {
		t.Fatalf("handler ran %d times; want 5", n)
	}
}

func TestServerInterceptor_TagInvalidationDropsTheTaggedResponses(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := catalogServer(t, c, searchOptions(grpccache.Method{
		TTL:  time.Hour,
		Tags: []string{"catalog", "search"},
		RequestTags: func(req proto.Message) []string {
			return []string{"query:" + req.(*testpb.SearchRequest).GetQuery()}
		},
	}), cat)
	expect := func(query, wantHeader string) {
		t.Helper()
		if _, h := search(t, ctx, client, &testpb.SearchRequest{Query: query}); h != wantHeader {
			t.Fatalf("%s: x-cache %s; want %s", query, h, wantHeader)
		}
	}
	expect("lamp", "miss")
	expect("desk", "miss")
	expect("lamp", "hit")
	expect("desk", "hit")

	if err := c.InvalidateTags(ctx, "query:lamp"); err != nil {
		t.Fatal(err)
	}
	expect("lamp", "miss") // its request tag
	expect("desk", "hit")  // untouched

	for _, tag := range []string{"catalog", "search"} { // each static tag drops them all
		if err := c.InvalidateTags(ctx, tag); err != nil {
			t.Fatal(err)
		}
		expect("lamp", "miss")
		expect("desk", "miss")
		expect("lamp", "hit")
	}
	if n := cat.calls.Load(); n != 7 {
		t.Fatalf("handler ran %d times; want 7", n)
	}
}

// Two servers share a Redis layer: a response one of them computed is served
// by the other, decoded into the method's real type from the stored bytes.
func TestServerInterceptor_HitFromASharedRedisLayerOfAnotherInstance(t *testing.T) {
	ctx := t.Context()
	s := redistest.Start(t)
	newInstance := func() *layercache.Cache {
		l1, err := memory.New(memory.Options{MaxSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		l2, err := redis.New(redis.Options{Client: s.Client(t), Prefix: "grpctest:"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := layercache.New([]driver.Layer{l1, l2}, layercache.WithStrictWrites())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	opts := searchOptions(grpccache.Method{TTL: time.Hour})
	catA, catB := &catalog{}, &catalog{}
	clientA := catalogServer(t, newInstance(), opts, catA)
	clientB := catalogServer(t, newInstance(), opts, catB)

	req := filteredRequest([]int{3, 1, 2})
	want := catalogResponse(ctx, req, 1)
	if resp, h := search(t, ctx, clientA, req); h != "miss" || !proto.Equal(resp, want) {
		t.Fatalf("instance A: x-cache %s, %v", h, resp)
	}
	resp, h := search(t, ctx, clientB, filteredRequest([]int{2, 3, 1}))
	if h != "hit" || !proto.Equal(resp, want) {
		t.Fatalf("instance B: x-cache %s, %v; want A's response from Redis", h, resp)
	}
	if catB.calls.Load() != 0 {
		t.Fatalf("instance B ran its handler %d times", catB.calls.Load())
	}
}

// A handler that panics panics on the call that ran it, as without the
// cache; the identical calls waiting for it fail with Internal, and nothing
// is cached.
func TestServerInterceptor_HandlerPanicReachesItsCallAndFailsTheWaitingOnes(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	intercept := grpccache.UnaryServerInterceptor(c, searchOptions(grpccache.Method{TTL: time.Hour}))
	info := &grpc.UnaryServerInfo{FullMethod: testpb.Catalog_Search_FullMethodName}
	req := &testpb.SearchRequest{Query: "vase"}

	release := make(chan struct{})
	started := make(chan struct{})
	panicking := func(context.Context, any) (any, error) {
		close(started)
		<-release
		panic("vase broke")
	}
	recovered := make(chan any, 1)
	go func() {
		defer func() { recovered <- recover() }()
		_, _ = intercept(ctx, req, info, panicking)
	}()
	<-started
	waiterErr := make(chan error, 1)
	go func() {
		_, err := intercept(ctx, req, info, func(context.Context, any) (any, error) {
			return nil, fmt.Errorf("a waiting call ran its own handler")
		})
		waiterErr <- err
	}()
	waitFor(t, "a call waiting for the panicking one", func() bool { return c.Stats().Deduplicated >= 1 })
	close(release)

	if p := <-recovered; p != "vase broke" {
		t.Fatalf("the call that ran the handler recovered %v; want the handler's panic", p)
	}
	if err := <-waiterErr; status.Code(err) != codes.Internal {
		t.Fatalf("the waiting call got %v; want Internal", err)
	}
	resp, err := intercept(ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return catalogResponse(ctx, req.(*testpb.SearchRequest), 7), nil
	})
	if err != nil || resp.(*testpb.SearchResponse).GetGeneration() != 7 {
		t.Fatalf("after the panic: %v, %v; want a fresh run", resp, err)
	}
}

// A closed cache does not take the service down: calls go to the handler.
func TestServerInterceptor_ClosedCacheServesUncached(t *testing.T) {
	ctx := t.Context()
	c := newCache(t)
	cat := &catalog{}
	client := catalogServer(t, c, searchOptions(grpccache.Method{TTL: time.Hour}), cat)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if resp, _ := search(t, ctx, client, &testpb.SearchRequest{Query: "bed"}); resp.GetGeneration() != int64(i+1) {
			t.Fatalf("call %d on a closed cache: generation %d", i, resp.GetGeneration())
		}
	}
}
