package grpccache

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/contrib/grpc/internal/testpb"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func searchMethod(t *testing.T) *method {
	t.Helper()
	m, err := newMethod(testpb.Catalog_Search_FullMethodName, Method{TTL: time.Hour}, "server")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKey_SameForEqualRequestsWhateverTheMapOrder(t *testing.T) {
	m := searchMethod(t)
	build := func(order []int) *testpb.SearchRequest {
		req := &testpb.SearchRequest{Query: "q", Filters: map[string]string{}, PriceRanges: map[int32]*testpb.Range{}}
		for _, i := range order {
			req.Filters["k"+strconv.Itoa(i)] = strconv.Itoa(i)
			req.PriceRanges[int32(i)] = &testpb.Range{Min: int64(i)}
		}
		return req
	}
	order := rand.Perm(100)
	want, err := m.key("", build(order))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if got, err := m.key("", build(order)); err != nil || got != want {
			t.Fatalf("key %q, %v; want %q", got, err, want)
		}
	}
	other := build(order)
	other.PriceRanges[50].Max = 1
	different := map[string]string{"": want}
	for name, k := range map[string]func() (string, error){
		"a nested map value changed": func() (string, error) { return m.key("", other) },
		"an identity":                func() (string, error) { return m.key("alice", build(order)) },
		"another identity":           func() (string, error) { return m.key("bob", build(order)) },
	} {
		got, err := k()
		if err != nil {
			t.Fatal(err)
		}
		for seen, key := range different {
			if got == key {
				t.Fatalf("%s gives the key of %q", name, seen)
			}
		}
		different[name] = got
	}
}

// The identity is length-prefixed: an identity cannot run into the request.
func TestKey_IdentityAndRequestCannotTradeBytes(t *testing.T) {
	m := searchMethod(t)
	req := &testpb.SearchRequest{Query: "x"}
	reqBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	// "alice" + the request's bytes, as an identity, with an empty request.
	a, _ := m.key("alice", req)
	b, _ := m.key("alice"+string(reqBytes), &testpb.SearchRequest{})
	if a == b {
		t.Fatal("an identity that swallows the request's bytes gives the same key")
	}
}

func TestDecodeRecord_RefusesWhatItCannotRead(t *testing.T) {
	newResp := func() proto.Message { return &testpb.SearchResponse{} }
	now := time.Now()
	st, err := encodeStatus(status.New(codes.NotFound, "gone"), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	okStatus, err := encodeStatus(status.New(codes.OK, ""), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{
		"empty":                 nil,
		"unknown kind":          {9, 1, 2},
		"truncated response":    {recordResponse, 0x0a, 0x05, 'a'},
		"short error record":    {recordStatus, 0, 0, 0},
		"truncated status":      st[:len(st)-2],
		"error record, no code": okStatus,
	} {
		if _, _, err := decodeRecord(rec, newResp, now); err == nil || err == errExpiredStatus {
			t.Errorf("%s: err %v; want a corrupt record", name, err)
		}
	}
	if _, got, err := decodeRecord(st, newResp, now); err != nil || got.Code() != codes.NotFound || got.Message() != "gone" {
		t.Fatalf("a good error record: %v, %v", got, err)
	}
	if _, _, err := decodeRecord(st, newResp, now.Add(time.Minute)); err != errExpiredStatus {
		t.Fatalf("an error record at its expiry: %v; want errExpiredStatus", err)
	}
}

// A record the interceptor cannot read, or a value of another type under its
// key, is a miss: the handler answers and its response replaces the entry.
func TestServerInterceptor_UnreadableEntryIsAMissAndIsReplaced(t *testing.T) {
	ctx := t.Context()
	l1, err := memory.New(memory.Options{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	intercept := UnaryServerInterceptor(c, Options{Methods: map[string]Method{testpb.Catalog_Search_FullMethodName: {TTL: time.Hour}}})
	info := &grpc.UnaryServerInfo{FullMethod: testpb.Catalog_Search_FullMethodName}
	req := &testpb.SearchRequest{Query: "broken"}
	key, err := searchMethod(t).key("", req)
	if err != nil {
		t.Fatal(err)
	}

	for name, put := range map[string]func() error{
		"garbage bytes":      func() error { return layercache.Set(ctx, c, key, []byte{0xee, 0xff}) },
		"truncated response": func() error { return layercache.Set(ctx, c, key, []byte{recordResponse, 0x0a, 0x7f}) },
		"another type":       func() error { return layercache.Set(ctx, c, key, "a string") },
	} {
		if err := put(); err != nil {
			t.Fatal(err)
		}
		runs := 0
		handler := func(ctx context.Context, req any) (any, error) {
			runs++
			return &testpb.SearchResponse{Generation: int64(runs)}, nil
		}
		for i := range 2 {
			resp, err := intercept(ctx, req, info, handler)
			if err != nil {
				t.Fatalf("%s, call %d: %v", name, i, err)
			}
			if got := resp.(*testpb.SearchResponse).GetGeneration(); got != 1 || runs != 1 {
				t.Fatalf("%s, call %d: generation %d after %d runs; want the first run's response, cached", name, i, got, runs)
			}
		}
	}
}

// Records come back from shared layers, which other programs can write:
// whatever the bytes, decoding returns a message, a status or an error.
func FuzzDecodeRecord(f *testing.F) {
	resp, err := encodeResponse(&testpb.SearchResponse{
		Items:  []*testpb.Item{{Id: "1", Attributes: map[string]string{"a": "b"}}},
		Facets: map[string]*testpb.Facet{"f": {Counts: map[string]int64{"x": 1}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	st, err := encodeStatus(status.New(codes.NotFound, "gone"), time.Unix(1<<32, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	f.Add(st)
	f.Add([]byte{})
	f.Add([]byte{recordStatus, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	now := time.Unix(1<<31, 0)
	f.Fuzz(func(t *testing.T, rec []byte) {
		msg, st, err := decodeRecord(rec, func() proto.Message { return &testpb.SearchResponse{} }, now)
		switch {
		case err != nil:
			if msg != nil || st != nil {
				t.Fatalf("an error with a result: %v, %v, %v", msg, st, err)
			}
		case st != nil:
			if msg != nil || st.Code() == codes.OK {
				t.Fatalf("a status record decoded to %v, %v", msg, st)
			}
		case msg == nil:
			t.Fatal("no result and no error")
		}
	})
}
