package httpcache

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Options configure a [Middleware]. Only TTL is required. An Options value
// that cannot work (a TTL of zero, a negative duration, a status that is not
// a complete response, ...) makes [New] and [NewMiddleware] panic with a
// message that names the field: it is a programming error, best caught when
// the program starts.
type Options struct {
	// TTL is how long a stored response is served as fresh. It must be
	// positive. Each layer of the cache keeps the response for at most its
	// own TTL.
	TTL time.Duration

	// Tags are attached to every response the middleware stores, so that
	// [layercache.Cache.InvalidateTags] with one of them drops those
	// responses on every instance.
	Tags []string

	// RequestTags returns further tags for one request's response, such as
	// "product:42" for /products/42. It runs only when a response may be
	// stored. Default: none.
	RequestTags func(r *http.Request) []string

	// Key returns the cache key of a request. A request for which it returns
	// "" is not served from the cache and its response is not stored
	// (X-Cache: BYPASS). The key is stored under a "httpcache:" prefix.
	// Default: the method, the host, the escaped path and the query with its
	// parameters sorted by name (the values of one name keep their order).
	Key func(r *http.Request) string

	// KeyIncludesIdentity declares that Key puts the caller's identity (a
	// user id taken from the Authorization header or a session cookie, for
	// instance) into the key. Only then are requests that carry an
	// Authorization or Cookie header served from the cache; without it they
	// always reach the handler and their responses are never stored. It
	// requires Key: the default key names no caller.
	KeyIncludesIdentity bool

	// StaleWhileRevalidate keeps serving a response for this long after its
	// TTL ran out, while one request refreshes it (X-Cache: STALE).
	// Default: 0, off.
	StaleWhileRevalidate time.Duration

	// StaleIfError keeps a response for this long after its TTL ran out and
	// serves it when the handler answers with a server error (5xx) instead
	// (X-Cache: STALE). Default: 0, off.
	StaleIfError time.Duration

	// Statuses are the response status codes that may be stored.
	// Default: 200, 203, 204, 300, 301, 404, 410 (the heuristically
	// cacheable codes of RFC 9111 that a route typically returns). 206 and
	// 304 are not complete responses and cannot be listed, nor can 1xx.
	Statuses []int

	// Headers are response headers stored and replayed besides
	// Content-Type, Content-Encoding, Content-Language, Content-Length,
	// ETag, Last-Modified, Cache-Control, Expires and Vary. Set-Cookie
	// cannot be listed: a response that sets a cookie is never stored.
	Headers []string

	// MaxBodySize is the largest body, in bytes, that is stored. A larger
	// response is sent to the client as it is produced and not stored.
	// Default: 1 MiB. Negative is an error.
	MaxBodySize int

	// IgnoreRequestNoCache serves from the cache requests that say
	// "Cache-Control: no-cache" (or "Pragma: no-cache"). By default such a
	// request runs the handler and its response replaces the stored one,
	// as a revalidation; set this when clients send the header so often
	// that it defeats the cache.
	IgnoreRequestNoCache bool
}

// DefaultMaxBodySize is the MaxBodySize used when Options leaves it zero.
const DefaultMaxBodySize = 1 << 20

// defaultStatuses are the status codes stored when Options.Statuses is empty.
var defaultStatuses = []int{
	http.StatusOK,
	http.StatusNonAuthoritativeInfo,
	http.StatusNoContent,
	http.StatusMultipleChoices,
	http.StatusMovedPermanently,
	http.StatusNotFound,
	http.StatusGone,
}

// storedHeaders are the response headers kept with every stored response.
// Content-Length is among them so that a HEAD response replays the length
// its handler declared.
var storedHeaders = []string{
	"Cache-Control",
	"Content-Encoding",
	"Content-Language",
	"Content-Length",
	"Content-Type",
	"Etag",
	"Expires",
	"Last-Modified",
	"Vary",
}

// settings is Options checked and compiled for the request path.
type settings struct {
	ttl, swr, sie time.Duration
	tags          []string
	requestTags   func(*http.Request) []string
	key           func(*http.Request) string
	identity      bool
	statuses      [600]bool
	keep          map[string]bool // canonical names of the headers stored
	maxBody       int
	ignoreNoCache bool
}

// Validate reports what is wrong with o, naming the field, or nil.
// [NewMiddleware] panics with this error.
func (o Options) Validate() error {
	_, err := o.compile()
	return err
}

// compile validates o and returns its compiled form, or an error that names
// the offending field.
func (o Options) compile() (*settings, error) {
	s := &settings{
		ttl:           o.TTL,
		swr:           o.StaleWhileRevalidate,
		sie:           o.StaleIfError,
		tags:          slices.Clone(o.Tags),
		requestTags:   o.RequestTags,
		key:           o.Key,
		identity:      o.KeyIncludesIdentity,
		maxBody:       o.MaxBodySize,
		ignoreNoCache: o.IgnoreRequestNoCache,
		keep:          make(map[string]bool, len(storedHeaders)+len(o.Headers)),
	}
	if o.TTL <= 0 {
		return nil, fmt.Errorf("Options.TTL must be positive, got %v", o.TTL)
	}
	if o.StaleWhileRevalidate < 0 {
		return nil, fmt.Errorf("Options.StaleWhileRevalidate must not be negative, got %v", o.StaleWhileRevalidate)
	}
	if o.StaleIfError < 0 {
		return nil, fmt.Errorf("Options.StaleIfError must not be negative, got %v", o.StaleIfError)
	}
	for i, t := range o.Tags {
		if t == "" {
			return nil, fmt.Errorf("Options.Tags[%d] is empty", i)
		}
	}
	if o.KeyIncludesIdentity && o.Key == nil {
		return nil, fmt.Errorf("Options.KeyIncludesIdentity needs Options.Key: the default key does not name the caller")
	}
	switch {
	case o.MaxBodySize < 0:
		return nil, fmt.Errorf("Options.MaxBodySize must not be negative, got %d", o.MaxBodySize)
	case o.MaxBodySize == 0:
		s.maxBody = DefaultMaxBodySize
	}
	statuses := o.Statuses
	if len(statuses) == 0 {
		statuses = defaultStatuses
	}
	for _, code := range statuses {
		if code < 200 || code > 599 || code == http.StatusPartialContent || code == http.StatusNotModified {
			return nil, fmt.Errorf("Options.Statuses: %d is not a complete response that can be stored", code)
		}
		s.statuses[code] = true
	}
	for _, h := range storedHeaders {
		s.keep[h] = true
	}
	for _, h := range o.Headers {
		if !validHeaderName(h) {
			return nil, fmt.Errorf("Options.Headers: %q is not a header name", h)
		}
		name := http.CanonicalHeaderKey(h)
		if name == "Set-Cookie" {
			return nil, fmt.Errorf("Options.Headers: Set-Cookie is never stored (a response that sets a cookie is not cached)")
		}
		s.keep[name] = true
	}
	return s, nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
