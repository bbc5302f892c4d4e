package layercache

import (
	"encoding/json"
	"net/http"
	"net/netip"
)

// HandlerOption configures an HTTP endpoint of the cache, such as
// [StatsHandler]. Every endpoint the package serves takes the same
// options and applies the same access rule.
type HandlerOption func(*endpoint)

// endpoint is what HandlerOptions set.
type endpoint struct {
	authorize func(*http.Request) bool
}

// WithAuthorization serves only the requests for which authorize returns
// true, from any address; the others are answered 403 Forbidden. authorize
// is called for every request, from the request's goroutine, before
// anything about the cache is read; it typically checks a token or the
// client certificate, and must be safe for concurrent use. It panics if
// authorize is nil.
//
// Without it, an endpoint serves only requests that come from a loopback
// address (127.0.0.0/8, ::1), judged by the connection's remote address
// alone, never by headers such as X-Forwarded-For that a client can set.
// Behind a reverse proxy on the same host every request looks local: give
// an authorization function there.
func WithAuthorization(authorize func(*http.Request) bool) HandlerOption {
	if authorize == nil {
		panic("layercache: WithAuthorization with a nil function")
	}
	return func(e *endpoint) { e.authorize = authorize }
}

// guarded wraps h in the access rule opts describe, for every endpoint of
// the package.
func guarded(h http.Handler, opts []HandlerOption) http.Handler {
	var e endpoint
	for _, opt := range opts {
		opt(&e)
	}
	allow := e.authorize
	if allow == nil {
		allow = fromLoopback
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(r) {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fromLoopback reports whether r came over a loopback connection.
// RemoteAddr is set by the server from the connection; an address it does
// not hold (a Unix socket's "@", an empty one) is not loopback.
func fromLoopback(r *http.Request) bool {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap().IsLoopback()
	}
	return false
}

// StatsHandler returns an http.Handler that serves c's [Stats] as JSON, for
// a debug or admin endpoint:
//
//	mux.Handle("GET /debug/cache", layercache.StatsHandler(c))
//	mux.Handle("GET /debug/cache", layercache.StatsHandler(c, layercache.WithAuthorization(isAdmin)))
//
// With the query parameter "ready" (GET /debug/cache?ready) it serves the
// [Cache.Health] report instead, as a readiness probe: 200 when the cache is
// ready, 503 when a layer outside the process is down, as [HealthHandler]
// does.
//
// Without [WithAuthorization] it serves only requests from loopback
// addresses and answers every other with 403 Forbidden. The statistics hold
// layer names and counters only: no keys, values or secrets of the layers.
func StatsHandler(c *Cache, opts ...HandlerOption) http.Handler {
	return guarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if _, ready := r.URL.Query()["ready"]; ready {
			serveHealth(w, r, c) // the readiness probe: ?ready
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.Stats())
	}), opts)
}

// MarshalText names the state in JSON and logs.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
