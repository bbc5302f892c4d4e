package httpcache_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/layercache/layercache"
	httpcache "github.com/layercache/layercache/contrib/http"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

func ExampleNew() {
	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
	cache, _ := layercache.New([]driver.Layer{l1})
	defer cache.Close()

	products := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	cached := httpcache.New(cache, httpcache.Options{TTL: time.Minute, Tags: []string{"products"}})
	mux := http.NewServeMux()
	mux.Handle("GET /products/{id}", cached(products))

	get := func() {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", "/products/7", nil))
		fmt.Println(w.Header().Get("X-Cache"), w.Body.String())
	}
	get()
	get()
	_ = cache.InvalidateTags(context.Background(), "products")
	get()
	// Output:
	// MISS {"id":"7"}
	// HIT {"id":"7"}
	// MISS {"id":"7"}
}
