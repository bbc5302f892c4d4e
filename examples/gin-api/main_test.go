package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/internal/redistest"
)

func init() { gin.SetMode(gin.TestMode) }

func request(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func product(t *testing.T, w *httptest.ResponseRecorder) Product {
	t.Helper()
	var p Product
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body.String(), err)
	}
	return p
}

func expect(t *testing.T, w *httptest.ResponseRecorder, status int, xcache string) {
	t.Helper()
	if w.Code != status || w.Header().Get("X-Cache") != xcache {
		t.Fatalf("got %d X-Cache %q, want %d %q (body %q)", w.Code, w.Header().Get("X-Cache"), status, xcache, w.Body.String())
	}
}

func TestAPI_CachesProductsAndInvalidatesOnPriceChange(t *testing.T) {
	cache, err := openCache("")
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	api := newRouter(cache, newCatalog(time.Millisecond))

	expect(t, request(t, api, "GET", "/products/1"), 200, "MISS")
	w := request(t, api, "GET", "/products/1")
	expect(t, w, 200, "HIT")
	if p := product(t, w); p.Price != 20 {
		t.Fatalf("price %v", p.Price)
	}
	expect(t, request(t, api, "GET", "/products"), 200, "MISS")
	expect(t, request(t, api, "GET", "/products"), 200, "HIT")
	expect(t, request(t, api, "GET", "/products/2"), 200, "MISS")

	if w := request(t, api, "PUT", "/products/1?price=9.5"); w.Code != http.StatusNoContent {
		t.Fatalf("PUT: %d %q", w.Code, w.Body.String())
	}
	w = request(t, api, "GET", "/products/1")
	expect(t, w, 200, "MISS")
	if p := product(t, w); p.Price != 9.5 {
		t.Fatalf("price after the change %v", p.Price)
	}
	expect(t, request(t, api, "GET", "/products"), 200, "MISS")
	expect(t, request(t, api, "GET", "/products/2"), 200, "HIT") // another product stays cached

	expect(t, request(t, api, "GET", "/products/99"), 404, "MISS")
	expect(t, request(t, api, "GET", "/products/99"), 404, "HIT")
	if w := request(t, api, "GET", "/uncached/products/1"); w.Header().Get("X-Cache") != "" || product(t, w).Price != 9.5 {
		t.Fatal("the uncached route went through the cache")
	}
	if w := request(t, api, "PUT", "/products/1?price=-1"); w.Code != http.StatusBadRequest {
		t.Fatalf("bad price: %d", w.Code)
	}
}

// With the Redis configuration, two instances share responses and a price
// change on one is a miss on the other.
func TestAPI_RedisConfigSharesAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv("LAYERCACHE_LAYERS__1__URL", srv.URL())
	open := func() *layercache.Cache {
		c, err := openCache("../configs/redis.yaml")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a, b := open(), open()
	cat := newCatalog(time.Millisecond)
	apiA, apiB := newRouter(a, cat), newRouter(b, cat)

	expect(t, request(t, apiA, "GET", "/products/3"), 200, "MISS")
	// a writes Redis in the background; b finds the response there soon.
	deadline := time.Now().Add(10 * time.Second)
	for request(t, apiB, "GET", "/products/3").Header().Get("X-Cache") != "HIT" {
		if time.Now().After(deadline) {
			t.Fatal("b never found a's response in Redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	heard := b.Stats().BusReceived
	if w := request(t, apiA, "PUT", "/products/3?price=1"); w.Code != http.StatusNoContent {
		t.Fatalf("PUT: %d %q", w.Code, w.Body.String())
	}
	for b.Stats().BusReceived == heard {
		if time.Now().After(deadline) {
			t.Fatal("b never heard of the invalidation")
		}
		time.Sleep(time.Millisecond)
	}
	w := request(t, apiB, "GET", "/products/3")
	expect(t, w, 200, "MISS")
	if p := product(t, w); p.Price != 1 {
		t.Fatalf("b serves price %v after the change", p.Price)
	}
}
