package httpcache_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	httpcache "github.com/layercache/layercache/contrib/http"
)

func TestServe_MissThenHitReplaysStatusBodyAndHeaders(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Language", "fr")
		w.Header().Set("X-Request-Only", "not stored")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":7}`))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)

	first := do(srv, "GET", "/products/7")
	wantXCache(t, first, "MISS")
	etag := first.Header().Get("Etag")
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("no ETag added to a cacheable response: %q", etag)
	}
	if first.Header().Get("X-Request-Only") != "not stored" {
		t.Fatal("the request that ran the handler lost one of its headers")
	}
	second := do(srv, "GET", "/products/7")
	wantXCache(t, second, "HIT")
	if h.runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", h.runs.Load())
	}
	if body(t, second) != `{"id":7}` || second.Code != 200 {
		t.Fatalf("hit: %d %q", second.Code, second.Body.String())
	}
	for _, name := range []string{"Content-Type", "Content-Language", "Etag"} {
		if got, want := second.Header().Get(name), first.Header().Get(name); got != want {
			t.Errorf("%s on hit = %q, want %q", name, got, want)
		}
	}
	if second.Header().Get("X-Request-Only") != "" {
		t.Error("a header outside the stored set was replayed")
	}
}

func TestServe_ListedHeadersAreStored(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", "3")
		w.Header().Set("X-Other", "x")
		_, _ = w.Write([]byte("v"))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, Headers: []string{"x-version"}})(h)
	do(srv, "GET", "/")
	hit := do(srv, "GET", "/")
	wantXCache(t, hit, "HIT")
	if hit.Header().Get("X-Version") != "3" || hit.Header().Get("X-Other") != "" {
		t.Fatalf("hit headers %v", hit.Header())
	}
}

func TestServe_StatusesAreKept(t *testing.T) {
	for _, tc := range []struct {
		status int
		stored bool
	}{
		{200, true}, {203, true}, {204, true}, {301, true}, {404, true}, {410, true},
		{201, false}, {302, false}, {400, false}, {500, false}, {503, false},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			c := memoryCache(t)
			h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 301 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				if tc.status != 204 {
					_, _ = w.Write([]byte("status " + strconv.Itoa(tc.status)))
				}
			}}
			srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, Headers: []string{"Location"}})(h)
			do(srv, "GET", "/x")
			w := do(srv, "GET", "/x")
			if w.Code != tc.status {
				t.Fatalf("second response is %d, want %d", w.Code, tc.status)
			}
			want, runs := "MISS", int64(2)
			if tc.stored {
				want, runs = "HIT", 1
			}
			wantXCache(t, w, want)
			if h.runs.Load() != runs {
				t.Fatalf("handler ran %d times, want %d", h.runs.Load(), runs)
			}
			if tc.status == 301 && w.Header().Get("Location") != "/elsewhere" {
				t.Fatal("redirect lost its Location")
			}
		})
	}
}

func TestServe_ConfiguredStatuses(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, Statuses: []int{201}})(h)
	do(srv, "GET", "/")
	w := do(srv, "GET", "/")
	wantXCache(t, w, "HIT")
	if w.Code != 201 {
		t.Fatal(w.Code)
	}
}

func TestServe_ConcurrentColdRequestsRunHandlerOnce(t *testing.T) {
	c := memoryCache(t)
	g := newGate()
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		g.wait()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(bytes.Repeat([]byte("abcdefgh"), 512))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)

	const n = 50
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w := do(srv, "GET", "/cold")
			bodies[i] = w.Body.Bytes()
		})
	}
	g.waitEntered(t, 1)
	// Release the handler once every other request waits for it.
	if !within(10*time.Second, func() bool { return c.Stats().Deduplicated >= n-1 }) {
		t.Fatalf("only %d requests joined the load", c.Stats().Deduplicated)
	}
	g.open()
	wg.Wait()
	if h.runs.Load() != 1 {
		t.Fatalf("handler ran %d times for %d concurrent requests, want 1", h.runs.Load(), n)
	}
	for i := range bodies {
		if !bytes.Equal(bodies[i], bodies[0]) || len(bodies[i]) != 4096 {
			t.Fatalf("response %d differs: %d bytes", i, len(bodies[i]))
		}
	}
}

func TestServe_SetCookieResponseIsNeverServedToAnotherRequest(t *testing.T) {
	c := memoryCache(t)
	g := newGate()
	var seq atomic.Int64
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		n := seq.Add(1)
		if n == 1 {
			g.wait() // the first request holds the others in the single-flight
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: strconv.FormatInt(n, 10)})
		_, _ = fmt.Fprintf(w, "response %d", n)
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)

	const n = 20
	results := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = do(srv, "GET", "/me") })
	}
	g.waitEntered(t, 1)
	if !within(10*time.Second, func() bool { return c.Stats().Deduplicated >= n-1 }) {
		t.Fatalf("only %d requests joined the load", c.Stats().Deduplicated)
	}
	g.open()
	wg.Wait()

	seen := map[string]bool{}
	for i, w := range results {
		cookies := w.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("response %d has %d cookies", i, len(cookies))
		}
		if want := "response " + cookies[0].Value; w.Body.String() != want {
			t.Fatalf("response %d: body %q with cookie %q: another request's response", i, w.Body.String(), cookies[0].Value)
		}
		if seen[cookies[0].Value] {
			t.Fatalf("cookie %s served twice", cookies[0].Value)
		}
		seen[cookies[0].Value] = true
		wantXCache(t, w, "MISS")
	}
	if h.runs.Load() != n {
		t.Fatalf("handler ran %d times, want once per request (%d)", h.runs.Load(), n)
	}
	// And nothing was stored for later requests either.
	w := do(srv, "GET", "/me")
	wantXCache(t, w, "MISS")
}

func TestServe_PrivateResponsesAreNotStored(t *testing.T) {
	for _, cc := range []string{"private", "no-store", "no-cache", `private="Set-Cookie"`, "max-age=60, No-Store"} {
		t.Run(cc, func(t *testing.T) {
			c := memoryCache(t)
			h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", cc)
				_, _ = w.Write([]byte("mine"))
			}}
			srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
			do(srv, "GET", "/")
			w := do(srv, "GET", "/")
			wantXCache(t, w, "MISS")
			if h.runs.Load() != 2 {
				t.Fatalf("handler ran %d times", h.runs.Load())
			}
		})
	}
}

func TestServe_AuthorizationAndCookieBypassByDefault(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("for " + r.Header.Get("Authorization") + r.Header.Get("Cookie")))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	for _, hdr := range [][]string{
		{"Authorization", "Bearer alice"}, {"Authorization", "Bearer bob"},
		{"Cookie", "sid=alice"}, {"Cookie", "sid=bob"},
	} {
		w := do(srv, "GET", "/account", hdr...)
		wantXCache(t, w, "BYPASS")
		if w.Body.String() != "for "+hdr[1] {
			t.Fatalf("%v got %q", hdr, w.Body.String())
		}
	}
	// An anonymous request is cached, and never served to a signed-in one.
	do(srv, "GET", "/account")
	w := do(srv, "GET", "/account", "Authorization", "Bearer carol")
	if w.Body.String() != "for Bearer carol" {
		t.Fatalf("signed-in request got %q", w.Body.String())
	}
	wantXCache(t, w, "BYPASS")
}

func TestServe_IdentityKeyKeepsUsersApart(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("private data of " + r.Header.Get("Authorization")))
	}}
	srv := httpcache.New(c, httpcache.Options{
		TTL:                 time.Minute,
		KeyIncludesIdentity: true,
		Key: func(r *http.Request) string {
			return r.Header.Get("Authorization") + " " + httpcache.DefaultKey(r)
		},
	})(h)
	users := []string{"Bearer alice", "Bearer bob"}
	for round := range 3 {
		for _, u := range users {
			w := do(srv, "GET", "/account", "Authorization", u)
			if w.Body.String() != "private data of "+u {
				t.Fatalf("round %d: %s saw %q", round, u, w.Body.String())
			}
			want := "HIT"
			if round == 0 {
				want = "MISS"
			}
			wantXCache(t, w, want)
		}
	}
	if h.runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want once per user", h.runs.Load())
	}
}

func TestServe_EmptyKeyBypasses(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) }}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, Key: func(r *http.Request) string {
		if r.URL.Query().Has("nocache") {
			return ""
		}
		return r.URL.Path
	}})(h)
	wantXCache(t, do(srv, "GET", "/a?nocache=1"), "BYPASS")
	wantXCache(t, do(srv, "GET", "/a"), "MISS")
	wantXCache(t, do(srv, "GET", "/a?other=1"), "HIT")
}

func TestServe_RequestsTheCacheDoesNotAnswerPassThrough(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Method)) }}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	for _, tc := range []struct {
		method string
		header []string
	}{
		{"POST", nil},
		{"PUT", nil},
		{"DELETE", nil},
		{"GET", []string{"Cache-Control", "no-store"}},
		{"GET", []string{"Upgrade", "websocket"}},
		{"GET", []string{"If-Match", `"x"`}},
		{"GET", []string{"If-Unmodified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}},
	} {
		for range 2 {
			w := do(srv, tc.method, "/same", tc.header...)
			wantXCache(t, w, "BYPASS")
		}
	}
	if h.runs.Load() != 14 {
		t.Fatalf("handler ran %d times, want 14", h.runs.Load())
	}
}

func TestServe_RangeRequestPassesThroughUnharmed(t *testing.T) {
	c := memoryCache(t)
	content := strings.Repeat("0123456789", 100)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "data.txt", time.Unix(1_700_000_000, 0), strings.NewReader(content))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	w := do(srv, "GET", "/data", "Range", "bytes=10-19")
	if w.Code != http.StatusPartialContent || w.Body.String() != "0123456789" {
		t.Fatalf("range: %d %q", w.Code, w.Body.String())
	}
	wantXCache(t, w, "BYPASS")
	full := do(srv, "GET", "/data")
	wantXCache(t, full, "MISS")
	if full.Code != 200 || full.Body.String() != content {
		t.Fatalf("full: %d, %d bytes", full.Code, full.Body.Len())
	}
	// A range request after the full response was stored still reaches
	// the handler and gets its part.
	w = do(srv, "GET", "/data", "Range", "bytes=0-4")
	if w.Code != http.StatusPartialContent || w.Body.String() != "01234" {
		t.Fatalf("range after store: %d %q", w.Code, w.Body.String())
	}
}

func TestServe_QueryOrderDoesNotMatterButRepeatedValuesDo(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Join(r.URL.Query()["tag"], ",") + "|" + r.URL.Query().Get("page")))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	wantXCache(t, do(srv, "GET", "/l?page=2&tag=a"), "MISS")
	wantXCache(t, do(srv, "GET", "/l?tag=a&page=2"), "HIT")
	first := do(srv, "GET", "/l?tag=a&tag=b")
	second := do(srv, "GET", "/l?tag=b&tag=a")
	wantXCache(t, second, "MISS")
	if first.Body.String() != "a,b|" || second.Body.String() != "b,a|" {
		t.Fatalf("%q, %q", first.Body.String(), second.Body.String())
	}
	if httpcache.DefaultKey(httptest.NewRequest("GET", "http://Example.com/x?b=1&a=2", nil)) !=
		httpcache.DefaultKey(httptest.NewRequest("GET", "http://example.com/x?a=2&b=1", nil)) {
		t.Fatal("default key depends on the order of parameters or the case of the host")
	}
	if httpcache.DefaultKey(httptest.NewRequest("GET", "http://a.example/x", nil)) ==
		httpcache.DefaultKey(httptest.NewRequest("GET", "http://b.example/x", nil)) {
		t.Fatal("default key ignores the host")
	}
}

func TestServe_HeadIsCachedApartFromGet(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello"))
	}}
	srv := httptest.NewServer(httpcache.New(c, httpcache.Options{TTL: time.Minute})(h))
	defer srv.Close()
	for i, method := range []string{"HEAD", "HEAD", "GET", "GET"} {
		req, _ := http.NewRequest(method, srv.URL+"/h", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		want := []string{"MISS", "HIT", "MISS", "HIT"}[i]
		if got := resp.Header.Get("X-Cache"); got != want {
			t.Fatalf("%d %s: X-Cache %s, want %s", i, method, got, want)
		}
		if method == "HEAD" && buf.Len() != 0 || method == "GET" && buf.String() != "hello" {
			t.Fatalf("%s body %q", method, buf.String())
		}
		if resp.ContentLength != 5 {
			t.Fatalf("%s %s: Content-Length %d", method, want, resp.ContentLength)
		}
	}
}

func TestServe_TagInvalidationMakesNextRequestAMiss(t *testing.T) {
	c := memoryCache(t)
	var version atomic.Int64
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%s v%d", r.URL.Path, version.Load())
	}}
	srv := httpcache.New(c, httpcache.Options{
		TTL:  time.Minute,
		Tags: []string{"products"},
		RequestTags: func(r *http.Request) []string {
			return []string{"product:" + strings.TrimPrefix(r.URL.Path, "/products/")}
		},
	})(h)
	do(srv, "GET", "/products/1")
	do(srv, "GET", "/products/2")
	version.Store(1)
	ctx := context.Background()

	if err := c.InvalidateTags(ctx, "product:1"); err != nil {
		t.Fatal(err)
	}
	w1, w2 := do(srv, "GET", "/products/1"), do(srv, "GET", "/products/2")
	wantXCache(t, w1, "MISS")
	wantXCache(t, w2, "HIT")
	if w1.Body.String() != "/products/1 v1" || w2.Body.String() != "/products/2 v0" {
		t.Fatalf("%q %q", w1.Body.String(), w2.Body.String())
	}

	if err := c.InvalidateTags(ctx, "products"); err != nil {
		t.Fatal(err)
	}
	wantXCache(t, do(srv, "GET", "/products/1"), "MISS")
	wantXCache(t, do(srv, "GET", "/products/2"), "MISS")
}

func TestServe_RequestNoCacheRevalidates(t *testing.T) {
	for _, hdr := range [][]string{{"Cache-Control", "no-cache"}, {"Pragma", "no-cache"}} {
		t.Run(hdr[0], func(t *testing.T) {
			c := memoryCache(t)
			var version atomic.Int64
			h := &counted{h: func(w http.ResponseWriter, r *http.Request) { _, _ = fmt.Fprintf(w, "v%d", version.Load()) }}
			srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
			do(srv, "GET", "/")
			version.Store(1)
			w := do(srv, "GET", "/", hdr...)
			wantXCache(t, w, "MISS")
			if w.Body.String() != "v1" {
				t.Fatalf("revalidation got %q", w.Body.String())
			}
			w = do(srv, "GET", "/")
			wantXCache(t, w, "HIT")
			if w.Body.String() != "v1" {
				t.Fatalf("the revalidated response did not replace the stored one: %q", w.Body.String())
			}
		})
	}
	t.Run("ignored", func(t *testing.T) {
		c := memoryCache(t)
		h := &counted{h: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) }}
		srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, IgnoreRequestNoCache: true})(h)
		do(srv, "GET", "/")
		wantXCache(t, do(srv, "GET", "/", "Cache-Control", "no-cache"), "HIT")
	})
}

func TestServe_ConditionalRequestsAnsweredFromCache(t *testing.T) {
	c := memoryCache(t)
	lastMod := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var sawConditional atomic.Bool
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			sawConditional.Store(true)
		}
		w.Header().Set("Last-Modified", lastMod.Format(http.TimeFormat))
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("representation"))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)

	// The request that runs the handler is answered 304 too.
	w := do(srv, "GET", "/doc", "If-Modified-Since", lastMod.Format(http.TimeFormat))
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Fatalf("miss with a matching If-Modified-Since: %d %q", w.Code, w.Body.String())
	}
	wantXCache(t, w, "MISS")
	etag := w.Header().Get("Etag")
	if etag == "" {
		t.Fatal("304 without ETag")
	}

	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"etag", []string{"If-None-Match", etag}, 304},
		{"weak etag", []string{"If-None-Match", "W/" + etag}, 304},
		{"list", []string{"If-None-Match", `"nope", ` + etag}, 304},
		{"star", []string{"If-None-Match", "*"}, 304},
		{"other etag", []string{"If-None-Match", `"nope"`}, 200},
		{"etag wins over date", []string{"If-None-Match", `"nope"`, "If-Modified-Since", lastMod.Format(http.TimeFormat)}, 200},
		{"not modified since", []string{"If-Modified-Since", lastMod.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"modified since", []string{"If-Modified-Since", lastMod.Add(-time.Hour).Format(http.TimeFormat)}, 200},
		{"bad date", []string{"If-Modified-Since", "yesterday"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(srv, "GET", "/doc", tc.header...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			wantXCache(t, w, "HIT")
			switch tc.want {
			case 304:
				if w.Body.Len() != 0 || w.Header().Get("Etag") != etag || w.Header().Get("Cache-Control") == "" {
					t.Fatalf("304: body %q, headers %v", w.Body.String(), w.Header())
				}
				if w.Header().Get("Content-Type") != "" {
					t.Fatal("304 carries Content-Type")
				}
			case 200:
				if w.Body.String() != "representation" {
					t.Fatalf("body %q", w.Body.String())
				}
			}
		})
	}
	if sawConditional.Load() {
		t.Fatal("the handler saw the client's conditions")
	}
	if h.runs.Load() != 1 {
		t.Fatalf("handler ran %d times", h.runs.Load())
	}
}

func TestServe_HandlerETagIsKept(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `W/"v7"`)
		_, _ = w.Write([]byte("x"))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	do(srv, "GET", "/")
	w := do(srv, "GET", "/", "If-None-Match", `"v7"`)
	if w.Code != 304 || w.Header().Get("Etag") != `W/"v7"` {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}

func TestServe_OversizeBodyPassesThroughUnstored(t *testing.T) {
	c := memoryCache(t)
	big := bytes.Repeat([]byte("z"), 1000)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < len(big); i += 100 {
			_, _ = w.Write(big[i : i+100])
		}
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, MaxBodySize: 250})(h)
	for range 2 {
		w := do(srv, "GET", "/big")
		wantXCache(t, w, "MISS")
		if !bytes.Equal(w.Body.Bytes(), big) || w.Header().Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("body of %d bytes, headers %v", w.Body.Len(), w.Header())
		}
	}
	if h.runs.Load() != 2 {
		t.Fatalf("handler ran %d times", h.runs.Load())
	}
}

func TestServe_GzipVariantNeverReachesPlainClient(t *testing.T) {
	for _, order := range [][]bool{{true, false}, {false, true}} {
		t.Run(fmt.Sprintf("gzip-first=%v", order[0]), func(t *testing.T) {
			c := memoryCache(t)
			h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Vary", "Accept-Encoding")
				w.Header().Set("Content-Type", "text/plain")
				if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
					w.Header().Set("Content-Encoding", "gzip")
					_, _ = w.Write([]byte("GZIPPED"))
					return
				}
				_, _ = w.Write([]byte("plain"))
			}}
			srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
			check := func(gzip bool, want string) {
				t.Helper()
				var w *httptest.ResponseRecorder
				if gzip {
					w = do(srv, "GET", "/text", "Accept-Encoding", "gzip")
				} else {
					w = do(srv, "GET", "/text")
				}
				wantXCache(t, w, want)
				enc := w.Header().Get("Content-Encoding")
				if gzip != (enc == "gzip") || gzip != (w.Body.String() == "GZIPPED") {
					t.Fatalf("gzip=%v: Content-Encoding %q, body %q", gzip, enc, w.Body.String())
				}
				if w.Header().Get("Vary") != "Accept-Encoding" {
					t.Fatal("Vary not replayed")
				}
			}
			check(order[0], "MISS")
			check(order[1], "MISS")
			check(order[0], "HIT")
			check(order[1], "HIT")
			if h.runs.Load() != 2 {
				t.Fatalf("handler ran %d times, want once per variant", h.runs.Load())
			}
		})
	}
}

func TestServe_VaryStarIsNotStored(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "*")
		_, _ = w.Write([]byte("x"))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	do(srv, "GET", "/")
	wantXCache(t, do(srv, "GET", "/"), "MISS")
}

func TestServe_ChangedVaryIsRelearned(t *testing.T) {
	c := memoryCache(t)
	var vary atomic.Value
	vary.Store("Accept-Encoding")
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", vary.Load().(string))
		_, _ = w.Write([]byte(r.Header.Get("Accept-Language") + "/" + r.Header.Get("Accept-Encoding")))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	do(srv, "GET", "/", "Accept-Language", "fr")
	vary.Store("Accept-Encoding, Accept-Language")
	// A new variant now varies by language as well: not stored under the
	// encoding-only variants, and the route learns again.
	w := do(srv, "GET", "/", "Accept-Encoding", "br", "Accept-Language", "de")
	wantXCache(t, w, "MISS")
	w = do(srv, "GET", "/", "Accept-Encoding", "br", "Accept-Language", "de")
	wantXCache(t, w, "MISS")
	w = do(srv, "GET", "/", "Accept-Encoding", "br", "Accept-Language", "de")
	wantXCache(t, w, "HIT")
	w = do(srv, "GET", "/", "Accept-Encoding", "br", "Accept-Language", "it")
	wantXCache(t, w, "MISS")
	if w.Body.String() != "it/br" {
		t.Fatalf("got %q", w.Body.String())
	}
}

func TestServe_StaleWhileRevalidate(t *testing.T) {
	c := memoryCache(t)
	var version atomic.Int64
	g := newGate()
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		if version.Load() > 0 {
			g.wait()
		}
		_, _ = fmt.Fprintf(w, "v%d", version.Load())
	}}
	const ttl = 20 * time.Millisecond
	srv := httpcache.New(c, httpcache.Options{TTL: ttl, StaleWhileRevalidate: time.Hour})(h)
	do(srv, "GET", "/")
	version.Store(1)
	time.Sleep(2 * ttl) // the response is now stale

	refreshed := make(chan *httptest.ResponseRecorder)
	go func() { refreshed <- do(srv, "GET", "/") }()
	g.waitEntered(t, 1)
	w := do(srv, "GET", "/")
	wantXCache(t, w, "STALE")
	if w.Body.String() != "v0" {
		t.Fatalf("stale body %q", w.Body.String())
	}
	g.open()
	w = <-refreshed
	wantXCache(t, w, "MISS")
	if w.Body.String() != "v1" {
		t.Fatalf("refresh got %q", w.Body.String())
	}
	w = do(srv, "GET", "/")
	if w.Body.String() != "v1" || w.Header().Get("X-Cache") == "MISS" {
		t.Fatalf("after refresh: %s %q", w.Header().Get("X-Cache"), w.Body.String())
	}
}

func TestServe_StaleIfError(t *testing.T) {
	c := memoryCache(t)
	var failing atomic.Bool
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "database down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("good"))
	}}
	const ttl = 20 * time.Millisecond
	srv := httpcache.New(c, httpcache.Options{TTL: ttl, StaleIfError: time.Hour})(h)
	do(srv, "GET", "/with-stale")
	failing.Store(true)
	time.Sleep(2 * ttl)
	w := do(srv, "GET", "/with-stale")
	wantXCache(t, w, "STALE")
	if w.Code != 200 || w.Body.String() != "good" {
		t.Fatalf("stale-if-error: %d %q", w.Code, w.Body.String())
	}
	// Without anything stored, the error is the answer.
	w = do(srv, "GET", "/never-stored")
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("cold error: %d", w.Code)
	}
	wantXCache(t, w, "MISS")
}

func TestServe_UncacheableRouteDoesNotServeStaleForNonErrors(t *testing.T) {
	// A response that sets a cookie is not an error: the request that ran
	// the handler gets it, even with a stale response at hand.
	c := memoryCache(t)
	var withCookie atomic.Bool
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		if withCookie.Load() {
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
			_, _ = w.Write([]byte("fresh with cookie"))
			return
		}
		_, _ = w.Write([]byte("old"))
	}}
	const ttl = 20 * time.Millisecond
	srv := httpcache.New(c, httpcache.Options{TTL: ttl, StaleIfError: time.Hour})(h)
	do(srv, "GET", "/")
	withCookie.Store(true)
	time.Sleep(2 * ttl)
	w := do(srv, "GET", "/")
	if w.Body.String() != "fresh with cookie" || len(w.Result().Cookies()) != 1 {
		t.Fatalf("got %q", w.Body.String())
	}
}

func TestServe_HandlerPanicReachesItsRequestAndOthersRunTheirOwn(t *testing.T) {
	c := memoryCache(t)
	g := newGate()
	var calls atomic.Int64
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			g.wait()
			panic("boom")
		}
		_, _ = w.Write([]byte("fine"))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)

	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		do(srv, "GET", "/p")
	}()
	g.waitEntered(t, 1)
	const n = 5
	results := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = do(srv, "GET", "/p") })
	}
	if !within(10*time.Second, func() bool { return c.Stats().Deduplicated >= n }) {
		t.Fatalf("only %d requests joined the load", c.Stats().Deduplicated)
	}
	g.open()
	if p := <-panicked; p != "boom" {
		t.Fatalf("the panicking request recovered %v, want the handler's panic value", p)
	}
	wg.Wait()
	for i, w := range results {
		if w.Code != 200 || w.Body.String() != "fine" {
			t.Fatalf("request %d: %d %q", i, w.Code, w.Body.String())
		}
	}
}

func TestServe_CorruptStoredBytesAreAMiss(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("real")) }}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	r := httptest.NewRequest("GET", "/c", nil)
	key := "httpcache:" + httpcache.DefaultKey(r)
	for _, junk := range [][]byte{nil, []byte("garbage"), {1, 'r', 0, 200}, {1, 'v', 0}, {9, 'r'}} {
		if err := layercache.Set(context.Background(), c, key, junk, layercache.WithTTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		w := do(srv, "GET", "/c")
		if w.Code != 200 || w.Body.String() != "real" {
			t.Fatalf("junk %q: %d %q", junk, w.Code, w.Body.String())
		}
		wantXCache(t, w, "MISS")
		wantXCache(t, do(srv, "GET", "/c"), "HIT")
	}
}

func TestServe_ValueOfAnotherTypeUnderTheKeyFallsBackToHandler(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("real")) }}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, Key: func(*http.Request) string { return "k" }})(h)
	if err := layercache.Set(context.Background(), c, "httpcache:k", 42); err != nil {
		t.Fatal(err)
	}
	w := do(srv, "GET", "/")
	if w.Code != 200 || w.Body.String() != "real" {
		t.Fatalf("%d %q", w.Code, w.Body.String())
	}
}

func TestServe_BodiesStayIdenticalUnderConcurrency(t *testing.T) {
	c := memoryCache(t)
	const keys = 8
	want := make([][]byte, keys)
	for k := range keys {
		want[k] = bytes.Repeat([]byte{byte('a' + k)}, 1000+k*37)
	}
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		k, _ := strconv.Atoi(r.URL.Query().Get("k"))
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(want[k])
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute})(h)
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := range 200 {
		wg.Go(func() {
			k := i % keys
			w := do(srv, "GET", "/b?k="+strconv.Itoa(k))
			if !bytes.Equal(w.Body.Bytes(), want[k]) {
				errs <- fmt.Sprintf("key %d: %d bytes, X-Cache %s", k, w.Body.Len(), w.Header().Get("X-Cache"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if h.runs.Load() > keys {
		t.Fatalf("handler ran %d times for %d keys", h.runs.Load(), keys)
	}
}

func TestNew_InvalidOptionsPanic(t *testing.T) {
	c := memoryCache(t)
	for _, tc := range []struct {
		o    httpcache.Options
		want string
	}{
		{httpcache.Options{}, "Options.TTL"},
		{httpcache.Options{TTL: -time.Second}, "Options.TTL"},
		{httpcache.Options{TTL: time.Second, StaleWhileRevalidate: -1}, "StaleWhileRevalidate"},
		{httpcache.Options{TTL: time.Second, StaleIfError: -1}, "StaleIfError"},
		{httpcache.Options{TTL: time.Second, MaxBodySize: -1}, "MaxBodySize"},
		{httpcache.Options{TTL: time.Second, Statuses: []int{206}}, "206"},
		{httpcache.Options{TTL: time.Second, Statuses: []int{304}}, "304"},
		{httpcache.Options{TTL: time.Second, Statuses: []int{100}}, "100"},
		{httpcache.Options{TTL: time.Second, Statuses: []int{700}}, "700"},
		{httpcache.Options{TTL: time.Second, Headers: []string{"Set-Cookie"}}, "Set-Cookie"},
		{httpcache.Options{TTL: time.Second, Headers: []string{"bad header"}}, "bad header"},
		{httpcache.Options{TTL: time.Second, Tags: []string{""}}, "Tags[0]"},
		{httpcache.Options{TTL: time.Second, KeyIncludesIdentity: true}, "KeyIncludesIdentity"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			defer func() {
				p := recover()
				msg, _ := p.(string)
				if !strings.HasPrefix(msg, "httpcache: ") || !strings.Contains(msg, tc.want) {
					t.Fatalf("panic %v, want a message about %s", p, tc.want)
				}
			}()
			httpcache.New(c, tc.o)
		})
	}
	t.Run("nil cache", func(t *testing.T) {
		defer func() {
			if p := recover(); p == nil {
				t.Fatal("no panic for a nil cache")
			}
		}()
		httpcache.New(nil, httpcache.Options{TTL: time.Second})
	})
}

// Regression: a handler that writes header keys into the map directly, in
// any case, must be judged by them all the same.
func TestServe_NonCanonicalHeaderKeysCount(t *testing.T) {
	c := memoryCache(t)
	h := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header()["set-cookie"] = []string{"sid=" + r.URL.Query().Get("u")}
		w.Header()["content-type"] = []string{"text/plain"}
		_, _ = w.Write([]byte("for " + r.URL.Query().Get("u")))
	}}
	srv := httpcache.New(c, httpcache.Options{TTL: time.Minute, Key: func(r *http.Request) string { return r.URL.Path }})(h)
	a := do(srv, "GET", "/x?u=alice")
	b := do(srv, "GET", "/x?u=bob")
	wantXCache(t, b, "MISS")
	if b.Body.String() != "for bob" || b.Header().Get("Set-Cookie") != "sid=bob" || a.Header().Get("Set-Cookie") != "sid=alice" {
		t.Fatalf("alice %q %v, bob %q %v", a.Body.String(), a.Header(), b.Body.String(), b.Header())
	}

	etagged := &counted{h: func(w http.ResponseWriter, r *http.Request) {
		w.Header()["etag"] = []string{`"mine"`}
		_, _ = w.Write([]byte("x"))
	}}
	srv = httpcache.New(c, httpcache.Options{TTL: time.Minute})(etagged)
	do(srv, "GET", "/e")
	w := do(srv, "GET", "/e")
	wantXCache(t, w, "HIT")
	if w.Header().Get("Etag") != `"mine"` {
		t.Fatalf("the handler's ETag was lost: %v", w.Header())
	}
}
