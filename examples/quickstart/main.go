// Command quickstart shows layercache's read-through with single-flight on
// an in-process layer: 100 goroutines ask for the same cold key at once and
// the loader runs once; then a warm hit is served from memory.
package main

import (
	"context"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

type Product struct {
	ID    int
	Name  string
	Price float64
}

func main() {
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		log.Fatal(err)
	}
	cache, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	ctx := context.Background()

	var loads atomic.Int32
	loadProduct := func(ctx context.Context) (Product, error) {
		loads.Add(1)
		time.Sleep(50 * time.Millisecond) // a slow database query
		return Product{ID: 7, Name: "Espresso machine", Price: 249.00}, nil
	}

	// 100 concurrent requests for a cold key.
	start := time.Now()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if _, err := layercache.Get(ctx, cache, "product:7", loadProduct, layercache.WithTTL(time.Minute)); err != nil {
				log.Fatal(err)
			}
		})
	}
	wg.Wait()
	fmt.Printf("cold: 100 concurrent Gets ran the loader %d time(s) in %v\n", loads.Load(), time.Since(start).Round(time.Millisecond))

	// A warm hit: served from memory, no loader, no decoding.
	start = time.Now()
	p, err := layercache.Get(ctx, cache, "product:7", loadProduct, layercache.WithTTL(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("warm: %s at %.2f in %v (loader runs so far: %d)\n", p.Name, p.Price, time.Since(start), loads.Load())

	s := cache.Stats()
	fmt.Printf("stats: L1 hits=%d misses=%d, loads=%d, callers that shared a load=%d\n",
		s.Layers[0].Hits, s.Layers[0].Misses, s.Loads, s.Deduplicated)
}
