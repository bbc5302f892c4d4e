package gincache_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	gincache "github.com/layercache/layercache/contrib/gin"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

func TestNew_MissThenHitSkipsTheRestOfTheChain(t *testing.T) {
	c := memoryCache(t)
	var runs atomic.Int64
	var seenByOuter []string
	r := gin.New()
	r.Use(func(gc *gin.Context) {
		gc.Next()
		seenByOuter = append(seenByOuter, fmt.Sprintf("%d %s", gc.Writer.Status(), gc.Writer.Header().Get("X-Cache")))
	})
	r.GET("/items/:id", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		runs.Add(1)
		gc.Header("X-Handler", "yes")
		gc.JSON(http.StatusOK, gin.H{"id": gc.Param("id")})
	})

	first := do(r, "GET", "/items/9")
	wantXCache(t, first, "MISS")
	second := do(r, "GET", "/items/9")
	wantXCache(t, second, "HIT")
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times", runs.Load())
	}
	for _, w := range []*httptest.ResponseRecorder{first, second} {
		if w.Code != 200 || w.Body.String() != `{"id":"9"}` || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%d %q %v", w.Code, w.Body.String(), w.Header())
		}
		if w.Header().Get("Etag") == "" {
			t.Fatal("no ETag")
		}
	}
	if first.Header().Get("X-Handler") != "yes" {
		t.Fatal("the request that ran the handler lost a header")
	}
	if got := strings.Join(seenByOuter, ","); got != "200 MISS,200 HIT" {
		t.Fatalf("middleware before the cache saw %q", got)
	}
}

func TestNew_StatusesComeBackAsTheyWere(t *testing.T) {
	c := memoryCache(t)
	var runs atomic.Int64
	r := gin.New()
	cached := gincache.New(c, gincache.Options{TTL: time.Minute})
	r.GET("/203", cached, func(gc *gin.Context) { runs.Add(1); gc.String(203, "from a mirror") })
	r.GET("/404", cached, func(gc *gin.Context) { runs.Add(1); gc.String(404, "no such thing") })
	r.GET("/204", cached, func(gc *gin.Context) { runs.Add(1); gc.Status(204) })
	r.GET("/500", cached, func(gc *gin.Context) { runs.Add(1); gc.AbortWithStatus(500) })
	for _, tc := range []struct {
		path   string
		status int
		body   string
		second string
	}{
		{"/203", 203, "from a mirror", "HIT"},
		{"/404", 404, "no such thing", "HIT"},
		{"/204", 204, "", "HIT"},
		{"/500", 500, "", "MISS"},
	} {
		for i := range 2 {
			w := do(r, "GET", tc.path)
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Fatalf("%s #%d: %d %q", tc.path, i, w.Code, w.Body.String())
			}
			if i == 1 {
				wantXCache(t, w, tc.second)
			}
		}
	}
	if runs.Load() != 5 {
		t.Fatalf("handlers ran %d times, want 5", runs.Load())
	}
}

func TestNew_ConcurrentColdRequestsRunHandlerOnce(t *testing.T) {
	c := memoryCache(t)
	release := make(chan struct{})
	var runs atomic.Int64
	r := gin.New()
	r.GET("/cold", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		runs.Add(1)
		<-release
		gc.Data(200, "application/octet-stream", bytes.Repeat([]byte("0123456789abcdef"), 256))
	})
	const n = 50
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { bodies[i] = do(r, "GET", "/cold").Body.Bytes() })
	}
	if !within(10*time.Second, func() bool { return runs.Load() == 1 && c.Stats().Deduplicated >= n-1 }) {
		t.Fatalf("runs %d, joined %d", runs.Load(), c.Stats().Deduplicated)
	}
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times for %d concurrent requests", runs.Load(), n)
	}
	for i := range bodies {
		if len(bodies[i]) != 4096 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("body %d differs (%d bytes)", i, len(bodies[i]))
		}
	}
}

func TestNew_SetCookieResponseIsNeverServedToAnotherRequest(t *testing.T) {
	c := memoryCache(t)
	release := make(chan struct{})
	var seq atomic.Int64
	r := gin.New()
	r.GET("/login", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		n := seq.Add(1)
		if n == 1 {
			<-release
		}
		gc.SetCookie("session", strconv.FormatInt(n, 10), 3600, "/", "", false, true)
		gc.String(200, "hello %d", n)
	})
	const n = 10
	results := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = do(r, "GET", "/login") })
	}
	if !within(10*time.Second, func() bool { return seq.Load() == 1 && c.Stats().Deduplicated >= n-1 }) {
		t.Fatal("requests did not all join the load")
	}
	close(release)
	wg.Wait()
	seen := map[string]bool{}
	for i, w := range results {
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || w.Body.String() != "hello "+cookies[0].Value || seen[cookies[0].Value] {
			t.Fatalf("response %d: %q with cookies %v", i, w.Body.String(), cookies)
		}
		seen[cookies[0].Value] = true
	}
	if w := do(r, "GET", "/login"); w.Header().Get("X-Cache") != "MISS" || len(w.Result().Cookies()) != 1 {
		t.Fatal("a response that set a cookie was stored")
	}
}

func TestNew_UsersWithDifferentAuthorizationNeverShareResponses(t *testing.T) {
	c := memoryCache(t)
	r := gin.New()
	profile := func(gc *gin.Context) { gc.String(200, "profile of %s", gc.GetHeader("Authorization")) }
	r.GET("/default/me", gincache.New(c, gincache.Options{TTL: time.Minute}), profile)
	r.GET("/keyed/me", gincache.New(c, gincache.Options{
		TTL:                 time.Minute,
		KeyIncludesIdentity: true,
		Key:                 func(gc *gin.Context) string { return gc.GetHeader("Authorization") + "|" + gc.Request.URL.Path },
	}), profile)
	for _, path := range []string{"/default/me", "/keyed/me"} {
		for round := range 3 {
			for _, user := range []string{"Bearer alice", "Bearer bob"} {
				w := do(r, "GET", path, "Authorization", user)
				if w.Body.String() != "profile of "+user {
					t.Fatalf("%s round %d: %s got %q", path, round, user, w.Body.String())
				}
				want := "BYPASS"
				if path == "/keyed/me" {
					want = map[bool]string{true: "MISS", false: "HIT"}[round == 0]
				}
				wantXCache(t, w, want)
			}
		}
	}
}

func TestNew_GzipVariantNeverReachesPlainClient(t *testing.T) {
	c := memoryCache(t)
	var runs atomic.Int64
	r := gin.New()
	r.GET("/page", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		runs.Add(1)
		gc.Header("Vary", "Accept-Encoding")
		if strings.Contains(gc.GetHeader("Accept-Encoding"), "gzip") {
			gc.Header("Content-Encoding", "gzip")
			gc.Data(200, "text/html", []byte("\x1f\x8bGZIP"))
			return
		}
		gc.Data(200, "text/html", []byte("<p>plain</p>"))
	})
	for i, gz := range []bool{true, false, true, false, false} {
		var w *httptest.ResponseRecorder
		if gz {
			w = do(r, "GET", "/page", "Accept-Encoding", "gzip, deflate")
		} else {
			w = do(r, "GET", "/page")
		}
		isGzip := w.Header().Get("Content-Encoding") == "gzip"
		if isGzip != gz || isGzip != strings.HasPrefix(w.Body.String(), "\x1f\x8b") {
			t.Fatalf("request %d (gzip=%v): Content-Encoding %q, body %q", i, gz, w.Header().Get("Content-Encoding"), w.Body.String())
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want once per encoding", runs.Load())
	}
}

func TestNew_RangePassesThrough(t *testing.T) {
	c := memoryCache(t)
	content := strings.Repeat("abcdefghij", 50)
	r := gin.New()
	r.GET("/file", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		http.ServeContent(gc.Writer, gc.Request, "f.txt", time.Unix(1_700_000_000, 0), strings.NewReader(content))
	})
	w := do(r, "GET", "/file", "Range", "bytes=5-9")
	if w.Code != 206 || w.Body.String() != "fghij" {
		t.Fatalf("%d %q", w.Code, w.Body.String())
	}
	wantXCache(t, w, "BYPASS")
	w = do(r, "GET", "/file")
	if w.Code != 200 || w.Body.String() != content {
		t.Fatalf("%d, %d bytes", w.Code, w.Body.Len())
	}
	wantXCache(t, w, "MISS")
}

func TestNew_StreamPassesThrough(t *testing.T) {
	c := memoryCache(t)
	var runs atomic.Int64
	r := gin.New()
	r.GET("/events", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		runs.Add(1)
		for i := range 3 {
			gc.SSEvent("tick", i)
			gc.Writer.Flush()
		}
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for range 2 {
		resp, err := srv.Client().Get(srv.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Cache") != "MISS" || strings.Count(string(b), "event:tick") != 3 {
			t.Fatalf("%s %q", resp.Header.Get("X-Cache"), b)
		}
	}
	if runs.Load() != 2 {
		t.Fatalf("stream handler ran %d times, want 2 (never stored)", runs.Load())
	}
}

func TestNew_ConditionalRequest(t *testing.T) {
	c := memoryCache(t)
	r := gin.New()
	var outerSaw, handlerSaw []string
	r.Use(func(gc *gin.Context) {
		gc.Next()
		outerSaw = append(outerSaw, gc.GetHeader("If-None-Match"))
	})
	r.GET("/doc", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		handlerSaw = append(handlerSaw, gc.GetHeader("If-None-Match"))
		gc.String(200, "doc")
	})
	// The same body under another key has the same entity-tag.
	etag := do(r, "GET", "/doc?learn").Header().Get("Etag")
	outerSaw, handlerSaw = nil, nil
	for i, want := range []string{"MISS", "HIT"} {
		w := do(r, "GET", "/doc", "If-None-Match", etag)
		if w.Code != 304 || w.Body.Len() != 0 || w.Header().Get("Etag") != etag {
			t.Fatalf("request %d: %d %q %v", i, w.Code, w.Body.String(), w.Header())
		}
		wantXCache(t, w, want)
	}
	if len(handlerSaw) != 1 || handlerSaw[0] != "" {
		t.Fatalf("the handler saw If-None-Match %q", handlerSaw)
	}
	if len(outerSaw) != 2 || outerSaw[0] != etag || outerSaw[1] != etag {
		t.Fatalf("middleware before the cache saw %q", outerSaw)
	}
}

func TestNew_GroupAndRequestTags(t *testing.T) {
	c := memoryCache(t)
	var version atomic.Int64
	r := gin.New()
	api := r.Group("/api", gincache.New(c, gincache.Options{
		TTL:         time.Minute,
		Tags:        []string{"api"},
		RequestTags: func(gc *gin.Context) []string { return []string{"user:" + gc.Param("id")} },
	}))
	api.GET("/users/:id", func(gc *gin.Context) { gc.String(200, "user %s v%d", gc.Param("id"), version.Load()) })
	api.GET("/stats", func(gc *gin.Context) { gc.String(200, "stats v%d", version.Load()) })
	do(r, "GET", "/api/users/1")
	do(r, "GET", "/api/users/2")
	do(r, "GET", "/api/stats")
	version.Store(1)
	if err := c.InvalidateTags(context.Background(), "user:1"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/api/users/1": "MISS", "/api/users/2": "HIT", "/api/stats": "HIT"} {
		wantXCache(t, do(r, "GET", path), want)
	}
	if err := c.InvalidateTags(context.Background(), "api"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/users/1", "/api/users/2", "/api/stats"} {
		wantXCache(t, do(r, "GET", path), "MISS")
	}
}

func TestNew_BodiesStayIdenticalUnder200ConcurrentRequests(t *testing.T) {
	c := memoryCache(t)
	want := func(id int) []byte { return bytes.Repeat([]byte(strconv.Itoa(id)+";"), 300+id) }
	r := gin.New()
	r.GET("/blob/:id", gincache.New(c, gincache.Options{TTL: time.Minute}), func(gc *gin.Context) {
		id, _ := strconv.Atoi(gc.Param("id"))
		gc.Data(200, "application/octet-stream", want(id))
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			id := i % 7
			resp, err := srv.Client().Get(srv.URL + "/blob/" + strconv.Itoa(id))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, want(id)) {
				errs <- fmt.Errorf("blob %d: %d bytes, %v, X-Cache %s", id, len(b), err, resp.Header.Get("X-Cache"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNew_TagInvalidationOnOneInstanceIsAMissOnAnother(t *testing.T) {
	srv := redistest.Start(t)
	instance := func() *layercache.Cache {
		client := srv.Client(t)
		l1, err := memory.New(memory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l2, err := redis.New(redis.Options{Client: client, Prefix: "api:"})
		if err != nil {
			t.Fatal(err)
		}
		bus, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "api"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := layercache.New([]driver.Layer{l1, l2}, layercache.WithBus(bus), layercache.WithStrictWrites())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	var version atomic.Int64
	engine := func(c *layercache.Cache) *gin.Engine {
		r := gin.New()
		r.GET("/menu", gincache.New(c, gincache.Options{TTL: time.Minute, Tags: []string{"menu"}}), func(gc *gin.Context) {
			gc.String(200, "menu v%d", version.Load())
		})
		return r
	}
	a, b := instance(), instance()
	ra, rb := engine(a), engine(b)
	wantXCache(t, do(ra, "GET", "/menu"), "MISS")
	wantXCache(t, do(rb, "GET", "/menu"), "HIT") // from Redis
	wantXCache(t, do(rb, "GET", "/menu"), "HIT") // from b's memory

	version.Store(1)
	heard := b.Stats().BusReceived
	if err := a.InvalidateTags(context.Background(), "menu"); err != nil {
		t.Fatal(err)
	}
	if !within(10*time.Second, func() bool { return b.Stats().BusReceived > heard }) {
		t.Fatal("b never heard of the invalidation")
	}
	w := do(rb, "GET", "/menu")
	wantXCache(t, w, "MISS")
	if w.Body.String() != "menu v1" {
		t.Fatalf("b served %q after the invalidation", w.Body.String())
	}
}

func TestNew_InvalidOptionsPanic(t *testing.T) {
	c := memoryCache(t)
	for _, tc := range []struct {
		o    gincache.Options
		want string
	}{
		{gincache.Options{}, "gincache: Options.TTL"},
		{gincache.Options{TTL: time.Second, KeyIncludesIdentity: true}, "gincache: Options.KeyIncludesIdentity"},
		{gincache.Options{TTL: time.Second, Statuses: []int{206}}, "gincache: Options.Statuses"},
		{gincache.Options{TTL: time.Second, MaxBodySize: -1}, "gincache: Options.MaxBodySize"},
	} {
		func() {
			defer func() {
				if msg, _ := recover().(string); !strings.HasPrefix(msg, tc.want) {
					t.Errorf("panic %q, want it to start with %q", msg, tc.want)
				}
			}()
			gincache.New(c, tc.o)
		}()
	}
}
