package gincache

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	httpcache "github.com/layercache/layercache/contrib/http"
)

// Options configure the middleware. Only TTL is required; each field means
// what the field of the same name in [httpcache.Options] means, with Gin's
// context where a function takes the request. Invalid Options make [New]
// panic with a message that names the field.
type Options struct {
	// TTL is how long a stored response is served as fresh. Required.
	TTL time.Duration

	// Tags are attached to every stored response, for
	// [layercache.Cache.InvalidateTags].
	Tags []string

	// RequestTags returns further tags for one request's response, such as
	// "product:"+c.Param("id"). Default: none.
	RequestTags func(c *gin.Context) []string

	// Key returns the cache key of a request; "" bypasses the cache.
	// Default: [httpcache.DefaultKey], method, host, path and sorted query.
	Key func(c *gin.Context) string

	// KeyIncludesIdentity declares that Key names the caller, so requests
	// with Authorization or Cookie headers may be served from the cache.
	// Requires Key.
	KeyIncludesIdentity bool

	// StaleWhileRevalidate and StaleIfError keep serving a response that
	// is past its TTL while it is refreshed, or when the handler answers
	// with a server error. Default: 0, off.
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration

	// Statuses are the status codes that may be stored. Default: 200, 203,
	// 204, 300, 301, 404, 410.
	Statuses []int

	// Headers are response headers stored besides those that describe
	// the body.
	Headers []string

	// MaxBodySize is the largest body stored. Default: 1 MiB.
	MaxBodySize int

	// IgnoreRequestNoCache serves requests that say Cache-Control:
	// no-cache from the cache instead of revalidating.
	IgnoreRequestNoCache bool
}

// New returns Gin middleware that caches the responses of the handlers after
// it in c. It panics if c is nil or o is invalid.
func New(c *layercache.Cache, o Options) gin.HandlerFunc {
	if c == nil {
		panic("gincache: nil *layercache.Cache")
	}
	ho := o.forHTTP()
	if err := ho.Validate(); err != nil {
		panic("gincache: " + err.Error())
	}
	m := httpcache.NewMiddleware(c, ho)
	key, tags := o.Key, o.RequestTags
	return func(gc *gin.Context) {
		var hooks httpcache.Hooks
		if key != nil {
			hooks.Key = func() string { return key(gc) }
		}
		if tags != nil {
			hooks.Tags = func() []string { return tags(gc) }
		}
		outer, req := gc.Writer, gc.Request
		m.Serve(outer, req, hooks, func(w http.ResponseWriter, r *http.Request) {
			gc.Request = r
			if w == http.ResponseWriter(outer) {
				gc.Next()
				return
			}
			rw := newResponseWriter(w)
			gc.Writer = rw
			gc.Next()
			rw.WriteHeaderNow() // as Gin's engine does after the chain
		})
		// The handlers may have seen a copy of the request without the
		// client's conditions, and a recording writer; what comes before
		// this middleware sees the real ones.
		gc.Writer, gc.Request = outer, req
		gc.Abort()
	}
}

// forHTTP is o for package httpcache. The key and tag functions, which
// need Gin's context, are passed per request as hooks, which take
// precedence; the placeholder key only tells httpcache that there is one.
func (o Options) forHTTP() httpcache.Options {
	h := httpcache.Options{
		TTL:                  o.TTL,
		Tags:                 o.Tags,
		KeyIncludesIdentity:  o.KeyIncludesIdentity,
		StaleWhileRevalidate: o.StaleWhileRevalidate,
		StaleIfError:         o.StaleIfError,
		Statuses:             o.Statuses,
		Headers:              o.Headers,
		MaxBodySize:          o.MaxBodySize,
		IgnoreRequestNoCache: o.IgnoreRequestNoCache,
	}
	if o.Key != nil {
		h.Key = func(*http.Request) string { return "" }
	}
	return h
}
