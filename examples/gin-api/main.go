// Command gin-api is a small Gin API whose slow product lookups are cached
// with gincache: in memory by default, in memory + Redis (shared by every
// instance, with invalidations carried by the bus) with a configuration
// file.
//
//	go run ./examples/gin-api                                        # memory only
//	go run ./examples/gin-api -config examples/configs/redis.yaml    # memory + Redis on localhost:6379
//
// Then:
//
//	curl -i localhost:8080/products/1              # X-Cache: MISS, takes ~200ms
//	curl -i localhost:8080/products/1              # X-Cache: HIT, at once
//	curl -i -X PUT 'localhost:8080/products/1?price=9.50'   # drops product 1 from the cache everywhere
//	curl -i localhost:8080/products/1              # X-Cache: MISS, the new price
//	curl -i localhost:8080/uncached/products/1     # the same lookup without the cache
//	curl -s localhost:8080/debug/cache             # the cache's counters
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	gincache "github.com/layercache/layercache/contrib/gin"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	_ "github.com/layercache/layercache/drivers/redis" // for -config files that use Redis
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	config := flag.String("config", "", "layercache YAML file (default: one in-process layer)")
	delay := flag.Duration("delay", 200*time.Millisecond, "how long the simulated database takes per lookup")
	flag.Parse()

	cache, err := openCache(*config)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	srv := &http.Server{
		Addr:              *addr,
		Handler:           newRouter(cache, newCatalog(*delay)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("gin-api listening on http://%s (cache: %s)", *addr, describe(*config))
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func describe(config string) string {
	if config == "" {
		return "memory"
	}
	return config
}

// openCache builds the cache from a configuration file, or a single
// in-process layer without one.
func openCache(config string) (*layercache.Cache, error) {
	if config != "" {
		return layercache.Open(config)
	}
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		return nil, err
	}
	return layercache.New([]driver.Layer{l1})
}

// newRouter is the API. Product reads are cached for a minute, tagged with
// the product, and served stale for up to 30 seconds more while one request
// refreshes them; the list is cached under its own tag. A price change
// invalidates the product and the list; every cached response also carries
// "catalog", which drops them all.
func newRouter(cache *layercache.Cache, cat *catalog) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())

	perProduct := gincache.New(cache, gincache.Options{
		TTL:                  time.Minute,
		StaleWhileRevalidate: 30 * time.Second,
		Tags:                 []string{"catalog"},
		RequestTags:          func(c *gin.Context) []string { return []string{"product:" + c.Param("id")} },
	})
	list := gincache.New(cache, gincache.Options{TTL: time.Minute, Tags: []string{"catalog", "product-list"}})

	r.GET("/products/:id", perProduct, cat.get)
	r.GET("/products", list, cat.list)
	r.GET("/uncached/products/:id", cat.get)
	r.PUT("/products/:id", func(c *gin.Context) {
		id := c.Param("id")
		price, err := strconv.ParseFloat(c.Query("price"), 64)
		if err != nil || price < 0 {
			c.JSON(http.StatusBadRequest, gin.H{"error": "price must be a non-negative number"})
			return
		}
		if !cat.setPrice(id, price) {
			c.JSON(http.StatusNotFound, gin.H{"error": "no product " + id})
			return
		}
		if err := cache.InvalidateTags(c.Request.Context(), "product:"+id, "product-list"); err != nil {
			// The price changed; say that cached copies may linger.
			c.JSON(http.StatusAccepted, gin.H{"warning": "cache not invalidated: " + err.Error()})
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/debug/cache", gin.WrapH(layercache.StatsHandler(cache)))
	return r
}

// Product is what the API serves.
type Product struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

// catalog stands for a slow database.
type catalog struct {
	delay time.Duration
	mu    sync.Mutex
	items map[string]Product
}

func newCatalog(delay time.Duration) *catalog {
	c := &catalog{delay: delay, items: map[string]Product{}}
	for i, name := range []string{"Espresso machine", "Burr grinder", "Milk jug", "Tamper", "Scale"} {
		id := strconv.Itoa(i + 1)
		c.items[id] = Product{ID: id, Name: name, Price: float64(20 * (i + 1))}
	}
	return c
}

func (cat *catalog) query(ctx context.Context) error {
	select {
	case <-time.After(cat.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (cat *catalog) get(c *gin.Context) {
	if err := cat.query(c.Request.Context()); err != nil {
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	cat.mu.Lock()
	p, ok := cat.items[c.Param("id")]
	cat.mu.Unlock()
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("no product %s", c.Param("id"))})
		return
	}
	c.JSON(http.StatusOK, p)
}

func (cat *catalog) list(c *gin.Context) {
	if err := cat.query(c.Request.Context()); err != nil {
		c.AbortWithStatus(http.StatusServiceUnavailable)
		return
	}
	cat.mu.Lock()
	all := make([]Product, 0, len(cat.items))
	for i := 1; i <= len(cat.items); i++ {
		all = append(all, cat.items[strconv.Itoa(i)])
	}
	cat.mu.Unlock()
	c.JSON(http.StatusOK, all)
}

func (cat *catalog) setPrice(id string, price float64) bool {
	cat.mu.Lock()
	defer cat.mu.Unlock()
	p, ok := cat.items[id]
	if ok {
		p.Price = price
		cat.items[id] = p
	}
	return ok
}
