package httpcache

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/layercache/layercache"
)

// New returns net/http middleware that caches the responses of the handler
// it wraps in c, by the rules of o (see the package documentation). It
// panics if c is nil or o is invalid.
//
//	mux.Handle("GET /products/{id}", httpcache.New(c, httpcache.Options{TTL: time.Minute})(products))
func New(c *layercache.Cache, o Options) func(http.Handler) http.Handler {
	return NewMiddleware(c, o).Wrap
}

// Middleware is the response cache of one route or group of routes: the
// rules of its Options applied to a [layercache.Cache]. Framework adapters
// (package github.com/layercache/layercache/contrib/gin) drive it with
// [Middleware.Serve]; net/http programs use [New] or [Middleware.Wrap].
// A Middleware is safe for concurrent use.
type Middleware struct {
	cache *layercache.Cache
	s     *settings
	// opts are the entry options of every stored response but its tags.
	opts     []layercache.EntryOption
	inflight inflight
}

// NewMiddleware returns the Middleware of o over c. It panics if c is nil
// or o is invalid.
func NewMiddleware(c *layercache.Cache, o Options) *Middleware {
	if c == nil {
		panic("httpcache: nil *layercache.Cache")
	}
	s, err := o.compile()
	if err != nil {
		panic("httpcache: " + err.Error())
	}
	m := &Middleware{cache: c, s: s, opts: []layercache.EntryOption{layercache.WithTTL(s.ttl)}}
	if s.swr > 0 {
		m.opts = append(m.opts, layercache.WithStaleWhileRevalidate(s.swr))
	}
	if s.sie > 0 {
		m.opts = append(m.opts, layercache.WithStaleIfError(s.sie))
	}
	return m
}

// Wrap returns next behind the cache.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Serve(w, r, Hooks{}, next.ServeHTTP)
	})
}

// Hooks let a framework adapter compute a request's key and tags from its
// own request context. A nil field falls back to Options.Key and
// Options.RequestTags.
type Hooks struct {
	Key  func() string
	Tags func() []string
}

// Serve answers r from the cache, or runs next and perhaps stores what it
// writes. next may be called with w itself (the request bypasses the cache,
// or the response cannot be shared) or with a writer that records the
// response; it is called at most once, on the calling goroutine.
//
// Every response Serve handles carries X-Cache: HIT (from the cache), STALE
// (from the cache, past its TTL), MISS (from the handler, for this request)
// or BYPASS (the request is not one the cache answers).
func (m *Middleware) Serve(w http.ResponseWriter, r *http.Request, hk Hooks, next func(http.ResponseWriter, *http.Request)) {
	act, cond := m.s.classify(r)
	if act == bypass {
		direct(w, r, bypassValue, next)
		return
	}
	key := m.s.fullKey(r, hk.Key)
	switch {
	case key == "":
		direct(w, r, bypassValue, next)
	case act == revalidate:
		m.revalidate(w, r, key, hk, next)
	default:
		m.serve(w, r, request{key: key, hooks: hk, conditional: cond}, next)
	}
}

// request is what the middleware knows of the request it answers: the key
// it reads and, for a variant, the route's key and the headers its
// responses vary with.
type request struct {
	key         string
	hooks       Hooks
	conditional bool     // the request has If-None-Match or If-Modified-Since
	base        string   // the route's key, when key is a variant's
	vary        []string // the headers the variants vary with
}

func (q request) variant(r *http.Request, names []string) request {
	v := q
	v.key, v.base, v.vary = variantKey(q.key, names, r), q.key, names
	return v
}

// serve answers from a fresh stored response, or loads one.
func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, q request, next func(http.ResponseWriter, *http.Request)) {
	b, ok, err := layercache.Lookup[[]byte](r.Context(), m.cache, q.key)
	if err == nil && ok {
		resp, names, err := parseRecord(b)
		switch {
		case err == nil && names == nil:
			if err = writeStored(w, r, q.conditional, &resp, hitValue); err == nil {
				return
			}
		case err == nil && q.base == "":
			m.serve(w, r, q.variant(r, names), next)
			return
		}
		// Bytes not of our making, or variants under a variant: drop them
		// and load again.
		_ = m.cache.Delete(r.Context(), q.key)
	}
	m.load(w, r, q, next)
}

// load runs the cache's single-flight for q.key: the first request runs
// the handler, the others share its response if it can be stored. A
// response that cannot be (it sets a cookie, is private, is an error, ...)
// belongs to the request it answers: the others then run the handler
// themselves.
func (m *Middleware) load(w http.ResponseWriter, r *http.Request, q request, next func(http.ResponseWriter, *http.Request)) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	me, ok := m.inflight.enter(q.key, cancel)
	if !ok {
		direct(w, r, missValue, next)
		return
	}
	defer m.inflight.leave(q.key, me)

	opts := m.entryOptions(r, q.hooks)
	var run *handlerRun // set when this request's handler ran
	b, err := layercache.Get(ctx, m.cache, q.key, func(context.Context) ([]byte, error) {
		if ctx.Err() != nil { // released by a request that passes through
			return nil, context.Cause(ctx)
		}
		run = &handlerRun{}
		return m.runHandler(ctx, w, r, q, opts, run, func() { m.inflight.passThrough(q.key, me) }, next)
	}, opts...)

	if run != nil {
		m.answerOwn(w, r, q, run, b, err)
		return
	}
	if err == nil {
		resp, names, perr := parseRecord(b)
		switch {
		case perr == nil && names == nil:
			if writeStored(w, r, q.conditional, &resp, m.freshness(&resp)) == nil {
				return
			}
		case perr == nil && q.base == "":
			m.serve(w, r, q.variant(r, names), next)
			return
		}
	}
	// Another request's response that is not to be shared, a stream, or a
	// cache that failed: this request gets its own response.
	if r.Context().Err() != nil {
		return // the client left
	}
	direct(w, r, missValue, next)
}

// handlerRun is what became of a handler run by this request.
type handlerRun struct {
	rec      *recorder
	refused  refusal
	panicked bool
	panicVal any
}

// runHandler runs next into a recorder and returns the record to store
// under q.key, or an error that says the response is not to be stored.
func (m *Middleware) runHandler(ctx context.Context, w http.ResponseWriter, r *http.Request, q request, opts []layercache.EntryOption,
	run *handlerRun, onPass func(), next func(http.ResponseWriter, *http.Request)) ([]byte, error) {
	run.rec = newRecorder(w, m.s.maxBody, onPass)
	func() {
		// The cache turns a panic into an error for everyone; this request
		// re-raises it once the cache is done, so that the server (or the
		// framework's recovery) sees it.
		defer func() {
			if p := recover(); p != nil {
				run.panicked, run.panicVal = true, p
				panic(p)
			}
		}()
		next(run.rec, forHandler(r))
	}()
	run.rec.finish()
	if run.rec.passed {
		return nil, errPassedThrough
	}
	return m.record(ctx, r, q, opts, run)
}

// errNotStored is the error a load ends with when its response is for its
// own request only.
var errNotStored = errors.New("httpcache: response not stored")

// record decides whether the response in run is stored and returns its
// record. For a route's first response that varies with request headers,
// the response is stored under its variant's key and the route's key gets
// the variants record.
func (m *Middleware) record(ctx context.Context, r *http.Request, q request, opts []layercache.EntryOption, run *handlerRun) ([]byte, error) {
	rec := run.rec
	canonicalize(rec.header)
	if run.refused = m.s.refuse(rec.status, rec.header); run.refused != storable {
		return nil, errNotStored
	}
	if len(rec.header["Etag"]) == 0 {
		rec.header["Etag"] = []string{bodyETag(rec.body)}
	}
	if len(rec.header["Content-Type"]) == 0 && len(rec.body) > 0 {
		// What net/http would send; stored so every hit says the same.
		rec.header["Content-Type"] = []string{http.DetectContentType(rec.body)}
	}
	names := varyNames(rec.header)
	if q.base != "" && !slices.Equal(names, q.vary) {
		// The route's responses no longer vary as its variants record
		// says: drop it, so the next request learns anew.
		run.refused = refuseVaryChanged
		_ = m.cache.Delete(ctx, q.base)
		return nil, errNotStored
	}
	enc := encodeResponse(rec.status, time.Now().UnixNano(), rec.header, m.s.stores, rec.body)
	if q.base != "" || len(names) == 0 {
		return enc, nil
	}
	// If this write fails in some layer, the next request for the variant
	// loads it again there; the variants record is right either way.
	_ = layercache.Set(ctx, m.cache, q.variant(r, names).key, enc, opts...)
	return encodeVariants(names), nil
}

// answerOwn sends the response of the handler this request ran, or what
// the cache gave instead of a server error (stale-if-error).
func (m *Middleware) answerOwn(w http.ResponseWriter, r *http.Request, q request, run *handlerRun, b []byte, err error) {
	if run.panicked {
		panic(run.panicVal)
	}
	if run.rec == nil || run.rec.passed {
		return
	}
	if err == nil && run.refused == refuseServerError {
		if resp, names, perr := parseRecord(b); perr == nil && names == nil && writeStored(w, r, q.conditional, &resp, staleValue) == nil {
			return
		}
	}
	writeRecorded(w, r, run.rec, missValue, run.refused == storable)
}

// revalidate answers a request that asked not to be served from a cache:
// its handler runs, and its response replaces the stored one.
func (m *Middleware) revalidate(w http.ResponseWriter, r *http.Request, key string, hk Hooks, next func(http.ResponseWriter, *http.Request)) {
	run := &handlerRun{rec: newRecorder(w, m.s.maxBody, nil)}
	next(run.rec, forHandler(r))
	run.rec.finish()
	if run.rec.passed {
		return
	}
	q := request{key: key, hooks: hk}
	opts := m.entryOptions(r, hk)
	if b, err := m.record(r.Context(), r, q, opts, run); err == nil {
		_ = layercache.Set(r.Context(), m.cache, key, b, opts...)
	}
	writeRecorded(w, r, run.rec, missValue, run.refused == storable)
}

// entryOptions are the options of a response stored for r.
func (m *Middleware) entryOptions(r *http.Request, hk Hooks) []layercache.EntryOption {
	var extra []string
	switch {
	case hk.Tags != nil:
		extra = hk.Tags()
	case m.s.requestTags != nil:
		extra = m.s.requestTags(r)
	}
	if len(m.s.tags) == 0 && len(extra) == 0 {
		return m.opts
	}
	// One WithTags with every tag: the entry gets exactly these.
	tags := append(slices.Clip(m.s.tags), extra...)
	return append(slices.Clip(m.opts), layercache.WithTags(tags...))
}

// freshness is the X-Cache value of a stored response the cache returned:
// STALE once its TTL has passed (stale-while-revalidate).
func (m *Middleware) freshness(resp *response) []string {
	if time.Now().UnixNano()-resp.storedAt >= int64(m.s.ttl) {
		return staleValue
	}
	return hitValue
}

// stores reports whether a response header is stored.
func (s *settings) stores(name string) bool { return s.keep[name] }

// forHandler is the request a handler sees when its response may be stored:
// without the conditions of this client, so that it writes the whole
// response, which the middleware then answers the conditions from.
func forHandler(r *http.Request) *http.Request {
	h := r.Header
	if len(h["If-None-Match"]) == 0 && len(h["If-Modified-Since"]) == 0 {
		return r
	}
	r2 := r.Clone(r.Context())
	delete(r2.Header, "If-None-Match")
	delete(r2.Header, "If-Modified-Since")
	return r2
}

// direct runs next for this request alone, labelled with xcache.
func direct(w http.ResponseWriter, r *http.Request, xcache []string, next func(http.ResponseWriter, *http.Request)) {
	setXCache(w.Header(), xcache)
	next(w, r)
}

// bodyETag is the entity-tag given to a stored response that has none: a
// hash of its body.
func bodyETag(body []byte) string {
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], xxh3.Hash(body))
	var tag [2 + 2*len(sum)]byte
	tag[0], tag[len(tag)-1] = '"', '"'
	hex.Encode(tag[1:], sum[:])
	return string(tag[:])
}

// canonicalize puts every key of h in canonical form, merging the values of
// keys that differ only in case: handlers may write to the map directly.
func canonicalize(h http.Header) {
	for k, v := range h {
		if ck := http.CanonicalHeaderKey(k); ck != k {
			delete(h, k)
			h[ck] = append(h[ck], v...)
		}
	}
}
