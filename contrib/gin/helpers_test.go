package gincache_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

func init() { gin.SetMode(gin.TestMode) }

func memoryCache(t testing.TB) *layercache.Cache {
	t.Helper()
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func do(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func wantXCache(t testing.TB, w *httptest.ResponseRecorder, want string) {
	t.Helper()
	if got := w.Header().Get("X-Cache"); got != want {
		t.Fatalf("X-Cache = %q, want %q (status %d, body %q)", got, want, w.Code, w.Body.String())
	}
}

func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return cond()
}
