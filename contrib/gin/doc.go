// Package gincache caches Gin responses in a layercache.Cache.
//
// It is a thin adapter: the rules (what is stored, the keys, Vary,
// conditional requests, single-flight, stale responses, what is never
// shared) are those of package
// github.com/layercache/layercache/contrib/http, which documents them. New
// returns a gin.HandlerFunc for one route or a group:
//
//	products := gincache.New(cache, gincache.Options{TTL: time.Minute, Tags: []string{"products"}})
//	r.GET("/products/:id", products, getProduct)
//
//	api := r.Group("/api", gincache.New(cache, gincache.Options{TTL: 30 * time.Second}))
//
// On a hit the rest of the chain does not run (the middleware aborts it);
// handlers that must run for every request, such as logging or metrics,
// belong before the cache middleware. Middleware placed before it also
// sees the X-Cache header on every response.
package gincache
