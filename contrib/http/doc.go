// Package httpcache caches HTTP responses in a layercache.Cache: net/http
// middleware, and the one implementation of the caching rules that the Gin
// adapter (package github.com/layercache/layercache/contrib/gin) shares.
//
//	cached := httpcache.New(cache, httpcache.Options{TTL: time.Minute, Tags: []string{"products"}})
//	mux.Handle("GET /products/{id}", cached(productHandler))
//	...
//	cache.InvalidateTags(ctx, "products") // on every instance that shares the cache
//
// # What is stored
//
// Responses to GET and HEAD whose status is one of Options.Statuses (200,
// 203, 204, 300, 301, 404 and 410 by default): the status, the body, and
// the headers that describe the body (Content-Type, Content-Encoding,
// Content-Language, Content-Length, ETag, Last-Modified, Cache-Control,
// Expires, Vary) plus Options.Headers. A response without an ETag is given
// one, a hash of its body, so that clients can revalidate it. The key is
// the method, host, path and sorted query unless Options.Key says
// otherwise; a response with a Vary header is stored per value of the
// request headers it names, so that, say, a gzip body never reaches a
// client that did not ask for gzip.
//
// Every response the middleware handles says how in X-Cache: HIT, STALE
// (past its TTL, served while it is refreshed or instead of a server
// error), MISS (the handler ran for this request) or BYPASS (the request is
// not one the cache answers).
//
// # Safe by default
//
//   - A response that sets a cookie, or says Cache-Control private,
//     no-store or no-cache, is never stored; it reaches only the request it
//     answers.
//   - A request with an Authorization or Cookie header bypasses the cache,
//     unless Options.KeyIncludesIdentity declares that Options.Key puts the
//     caller's identity in the key.
//   - Range requests, protocol upgrades, requests with If-Match or
//     If-Unmodified-Since, and requests that say Cache-Control: no-store
//     pass through to the handler untouched.
//   - A handler that flushes (a stream) or writes more than
//     Options.MaxBodySize has its response sent as it is written, and not
//     stored.
//   - A request that says Cache-Control: no-cache (or Pragma: no-cache) runs
//     the handler and its response replaces the stored one, unless
//     Options.IgnoreRequestNoCache.
//
// # Concurrency
//
// Concurrent requests for a key that is not stored run the handler once,
// through the cache's single-flight (across instances too, with a
// coordinator): the first request runs it, the others are given its
// response once it is stored. If it is not to be stored (an error, a
// cookie, a stream, ...), they do not get it: each runs the handler for
// itself. A request whose handler streams releases the waiting ones at its
// first flush instead of when it ends. The handler runs on the goroutine of
// the request it answers; a panic in it is raised again there, after the
// cache has let the other requests go.
//
// Conditional requests (If-None-Match, If-Modified-Since) for a stored 200
// are answered 304 by the middleware; the handler always sees the request
// without them, so that it writes the full response for everybody.
//
// # Stored form
//
// Responses are stored as compact byte records (a version, the status, the
// time of storage, length-prefixed headers, the body) rather than through
// the cache's codec, so that a hit in memory reads a few lengths and
// allocates once, whatever the number of headers. The format is written by
// hand because it is small and is the hit path; bytes that are not a record
// of it are a miss (they are deleted and the handler runs).
//
// Like the values the cache shares between callers, what a hit writes into
// the response's header map is shared: the header values point into the
// stored record, and the X-Cache values are shared by all responses.
// Middleware may set, add and delete headers as usual, but must not write
// into a header's value slice in place (h["X"][0] = ...).
package httpcache
