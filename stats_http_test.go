package layercache_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/disk"
	"github.com/layercache/layercache/drivers/memory"
)

// statsCache is a memory + encrypted disk cache with one load done, so its
// stats are not all zero.
func statsCache(t *testing.T, key disk.Key) *layercache.Cache {
	t.Helper()
	l1, err := memory.New(memory.Options{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	l3, err := disk.New(disk.Options{Dir: t.TempDir(), EncryptionKeys: []disk.Key{key}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1, l3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := layercache.Get(context.Background(), c, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	return c
}

func serve(h http.Handler, remoteAddr string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/debug/cache", nil)
	r.RemoteAddr = remoteAddr
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestStatsHandler_WithoutAuthorizationServesOnlyLoopback(t *testing.T) {
	h := layercache.StatsHandler(statsCache(t, disk.Key(bytes.Repeat([]byte{1}, 32))))
	for addr, want := range map[string]int{
		"127.0.0.1:5555":       http.StatusOK,
		"127.9.8.7:1":          http.StatusOK,
		"[::1]:8080":           http.StatusOK,
		"[::ffff:127.0.0.1]:1": http.StatusOK,
		"192.0.2.1:1234":       http.StatusForbidden, // httptest's default
		"10.0.0.5:80":          http.StatusForbidden,
		"[2001:db8::1]:443":    http.StatusForbidden,
		"[::ffff:10.1.2.3]:1":  http.StatusForbidden,
		"0.0.0.0:1":            http.StatusForbidden,
		"@":                    http.StatusForbidden, // a Unix socket
		"":                     http.StatusForbidden,
		"localhost:80":         http.StatusForbidden, // never resolved
	} {
		w := serve(h, addr, http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Real-Ip": {"127.0.0.1"}})
		if w.Code != want {
			t.Errorf("from %q: status %d, want %d", addr, w.Code, want)
		}
		if want == http.StatusForbidden && strings.Contains(w.Body.String(), "Layers") {
			t.Errorf("from %q: refused, yet the body holds stats: %s", addr, w.Body)
		}
	}
}

func TestStatsHandler_AuthorizationFunctionDecides(t *testing.T) {
	const token = "Bearer let-me-in"
	var calls int
	h := layercache.StatsHandler(statsCache(t, disk.Key(bytes.Repeat([]byte{2}, 32))),
		layercache.WithAuthorization(func(r *http.Request) bool {
			calls++
			return r.Header.Get("Authorization") == token
		}))
	for _, tc := range []struct {
		addr, auth string
		want       int
	}{
		{"203.0.113.9:4000", token, http.StatusOK},
		{"203.0.113.9:4000", "", http.StatusForbidden},
		{"203.0.113.9:4000", "Bearer guess", http.StatusForbidden},
		// The function replaces the loopback rule: local callers need it too.
		{"127.0.0.1:4000", "", http.StatusForbidden},
		{"127.0.0.1:4000", token, http.StatusOK},
	} {
		w := serve(h, tc.addr, http.Header{"Authorization": {tc.auth}})
		if w.Code != tc.want {
			t.Errorf("from %s with %q: status %d, want %d", tc.addr, tc.auth, w.Code, tc.want)
		}
	}
	if calls != 5 {
		t.Errorf("authorization function called %d times for 5 requests", calls)
	}
}

func TestStatsHandler_ServesRealLoopbackConnection(t *testing.T) {
	srv := httptest.NewServer(layercache.StatsHandler(statsCache(t, disk.Key(bytes.Repeat([]byte{3}, 32)))))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s struct {
		Loads  int
		Layers []struct{ Name string }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &s) != nil || s.Loads != 1 || len(s.Layers) != 2 {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
}

func TestStatsHandler_ExposesNoKeyMaterial(t *testing.T) {
	key := disk.Key(bytes.Repeat([]byte{0xc4}, 32))
	w := serve(layercache.StatsHandler(statsCache(t, key)), "127.0.0.1:1", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	for _, form := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), string(key)} {
		if strings.Contains(w.Body.String(), form) {
			t.Fatalf("the stats show the disk layer's key: %s", w.Body)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
}

func TestWithAuthorization_NilPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "nil") {
			t.Fatalf("recover() = %v, want a panic about the nil function", r)
		}
	}()
	layercache.WithAuthorization(nil)
}
