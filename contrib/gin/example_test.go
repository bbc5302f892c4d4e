package gincache_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	gincache "github.com/layercache/layercache/contrib/gin"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

func ExampleNew() {
	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
	cache, _ := layercache.New([]driver.Layer{l1})
	defer cache.Close()

	r := gin.New()
	r.GET("/products/:id",
		gincache.New(cache, gincache.Options{
			TTL:         time.Minute,
			RequestTags: func(c *gin.Context) []string { return []string{"product:" + c.Param("id")} },
		}),
		func(c *gin.Context) { c.JSON(200, gin.H{"id": c.Param("id")}) },
	)

	get := func() {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/products/7", nil))
		fmt.Println(w.Header().Get("X-Cache"), w.Body.String())
	}
	get()
	get()
	_ = cache.InvalidateTags(context.Background(), "product:7")
	get()
	// Output:
	// MISS {"id":"7"}
	// HIT {"id":"7"}
	// MISS {"id":"7"}
}
