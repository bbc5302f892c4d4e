package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/internal/redistest"
)

// app is a running application: a cache opened from the same file the
// command is given, holding its disk directory as a real one would.
type app struct {
	cache  *layercache.Cache
	config string
	redis  *redistest.Server
}

type user struct {
	Name string `json:"name"`
	Age  int    `json:"age"`
}

// avatar is not valid UTF-8, so only --raw shows it as it is.
var avatar = []byte{0x89, 'P', 'N', 'G', 0xff, 0x00, 0x01}

func startApp(t *testing.T) *app {
	t.Helper()
	srv := redistest.Start(t)
	path := writeConfig(t, fmt.Sprintf(`namespace: shop
layers:
  - driver: memory
  - driver: redis
    url: %s
  - driver: disk
    dir: %s
bus: { driver: redis }
`, srv.URL(), t.TempDir()))
	c, err := layercache.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	users := []layercache.EntryOption{layercache.WithTTL(time.Minute), layercache.WithTags("users")}
	for i, name := range []string{"Ada", "Grace", "Barbara"} {
		if err := layercache.Set(ctx, c, fmt.Sprintf("user:%d", i+1), user{name, 36 + i}, users...); err != nil {
			t.Fatal(err)
		}
	}
	if err := layercache.Set(ctx, c, "order:1", user{"order", 1}, layercache.WithTTL(time.Minute), layercache.WithTags("orders")); err != nil {
		t.Fatal(err)
	}
	if err := layercache.Set(ctx, c, "avatar:1", avatar, layercache.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return &app{cache: c, config: path, redis: srv}
}

// gone waits until the application no longer finds key. The change comes
// over the bus, so it may take a moment; 10 s means it never came.
func (a *app) gone(t *testing.T, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, ok, err := layercache.Lookup[user](t.Context(), a.cache, key)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the application still serves %s", key)
}

func (a *app) has(t *testing.T, key string) bool {
	t.Helper()
	_, ok, err := layercache.Lookup[user](t.Context(), a.cache, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestGet_ShowsValueLayerTTLAndTags(t *testing.T) {
	a := startApp(t)
	r := cli(t, "get", "user:1", "--config", a.config)
	wantCode(t, r, exitOK)
	wantIn(t, "stdout", r.stdout, `{"name":"Ada","age":36}`, "layers[1] (redis)", "users", "json")
	// The application holds the disk directory: the command says it left
	// that layer out rather than failing.
	wantIn(t, "stderr", r.stderr, "layers[2] (disk) skipped", "in use by a running application")

	r = cli(t, "get", "--json", "user:2", "--config", a.config)
	wantCode(t, r, exitOK)
	var got struct {
		Layer string   `json:"layer"`
		Codec string   `json:"codec"`
		TTL   string   `json:"ttl"`
		Tags  []string `json:"tags"`
		Value user     `json:"value"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("get --json: %v\n%s", err, r.stdout)
	}
	ttl, err := time.ParseDuration(got.TTL)
	if err != nil {
		t.Fatalf("ttl %q: %v", got.TTL, err)
	}
	if got.Layer != "layers[1] (redis)" || got.Codec != "json" || !slices.Equal(got.Tags, []string{"users"}) ||
		got.Value != (user{"Grace", 37}) || ttl <= 0 || ttl > time.Minute {
		t.Errorf("get --json = %+v (ttl %v)", got, ttl)
	}
}

func TestGet_RawWritesTheStoredBytes(t *testing.T) {
	a := startApp(t)
	r := cli(t, "get", "--raw", "avatar:1", "--config", a.config)
	wantCode(t, r, exitOK)
	if r.stdout != string(avatar) {
		t.Errorf("get --raw = %q, want %q", r.stdout, avatar)
	}
	r = cli(t, "get", "avatar:1", "--config", a.config)
	wantCode(t, r, exitOK)
	wantIn(t, "stdout", r.stdout, "raw", fmt.Sprintf("%d bytes", len(avatar)))
}

func TestGet_MissingKeyExitsOneNamingTheLayersSearched(t *testing.T) {
	a := startApp(t)
	r := cli(t, "get", "user:99", "--config", a.config)
	wantCode(t, r, exitFailure)
	wantIn(t, "stderr", r.stderr, `"user:99": not found in layers[1] (redis)`)
	if r.stdout != "" {
		t.Errorf("stdout should be empty, got %q", r.stdout)
	}
}

func TestInspect_ShowsEveryLayer(t *testing.T) {
	a := startApp(t)
	r := cli(t, "inspect", "user:3", "--config", a.config)
	wantCode(t, r, exitOK)
	wantRow(t, r.stdout, "layers[0] (memory)", "private", "to", "each", "application", "process")
	redisRow := rowOf(t, r.stdout, "layers[1] (redis)")
	if len(redisRow) != 5 || redisRow[0] != "present" || redisRow[3] != "json" || redisRow[4] != "users" {
		t.Errorf("redis row %q", redisRow)
	}
	wantRow(t, r.stdout, "layers[2] (disk)", "skipped:", "in", "use")

	// Once the application is gone, its disk directory can be read too.
	if err := a.cache.Close(); err != nil {
		t.Fatal(err)
	}
	r = cli(t, "inspect", "--json", "user:3", "--config", a.config)
	wantCode(t, r, exitOK)
	var got struct {
		Key    string
		Layers []struct {
			Layer, Status string
			Entry         *struct {
				Size int
				Tags []string
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.stdout)
	}
	var statuses []string
	for _, l := range got.Layers {
		statuses = append(statuses, l.Status)
		if l.Status == "present" && (l.Entry == nil || l.Entry.Size == 0 || !slices.Equal(l.Entry.Tags, []string{"users"})) {
			t.Errorf("%s: entry %+v", l.Layer, l.Entry)
		}
	}
	if got.Key != "user:3" || !slices.Equal(statuses, []string{"private", "present", "present"}) {
		t.Errorf("inspect --json = %s", r.stdout)
	}

	r = cli(t, "inspect", "user:99", "--config", a.config)
	wantCode(t, r, exitOK)
	wantRow(t, r.stdout, "layers[1] (redis)", "absent")
	wantRow(t, r.stdout, "layers[2] (disk)", "absent")
}

func TestKeys_ListsKeysUnderAPrefix(t *testing.T) {
	a := startApp(t)
	r := cli(t, "keys", "--prefix", "user:", "--config", a.config)
	wantCode(t, r, exitOK)
	keys := strings.Fields(r.stdout)
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"user:1", "user:2", "user:3"}) {
		t.Errorf("keys --prefix user: = %q", keys)
	}

	r = cli(t, "keys", "--limit", "2", "--config", a.config)
	wantCode(t, r, exitOK)
	if n := len(strings.Fields(r.stdout)); n != 2 {
		t.Errorf("keys --limit 2 listed %d keys:\n%s", n, r.stdout)
	}
	wantIn(t, "stderr", r.stderr, "stopped at --limit 2")

	r = cli(t, "keys", "--json", "--config", a.config)
	wantCode(t, r, exitOK)
	var all []keyInfo
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil {
		t.Fatalf("keys --json: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, k := range all {
		names = append(names, k.Key)
		if k.Layer != "layers[1] (redis)" {
			t.Errorf("key %s from %s", k.Key, k.Layer)
		}
	}
	slices.Sort(names)
	// No tag index and nothing outside the namespace.
	if !slices.Equal(names, []string{"avatar:1", "order:1", "user:1", "user:2", "user:3"}) {
		t.Errorf("keys --json listed %q", names)
	}

	// Glob characters in the prefix are literal.
	r = cli(t, "keys", "--prefix", "user*", "--config", a.config)
	wantCode(t, r, exitOK)
	if r.stdout != "" {
		t.Errorf(`keys --prefix "user*" = %q, want nothing`, r.stdout)
	}
}

func TestDel_ReachesTheRunningApplication(t *testing.T) {
	a := startApp(t)
	if !a.has(t, "user:1") || !a.has(t, "user:2") {
		t.Fatal("the application should hold the users")
	}
	r := cli(t, "del", "user:1", "user:2", "--config", a.config)
	wantCode(t, r, exitOK)
	wantIn(t, "stdout", r.stdout, "deleted 2 key(s)")
	// Its memory and disk copies are dropped through the bus.
	a.gone(t, "user:1")
	a.gone(t, "user:2")
	if !a.has(t, "user:3") {
		t.Error("user:3 was not deleted but is gone")
	}
	r = cli(t, "get", "user:1", "--config", a.config)
	wantCode(t, r, exitFailure)
}

func TestInvalidate_TagReachesTheRunningApplication(t *testing.T) {
	a := startApp(t)
	r := cli(t, "invalidate", "--tag", "users", "--config", a.config)
	wantCode(t, r, exitOK)
	wantIn(t, "stdout", r.stdout, "invalidated 1 tag(s)")
	for _, k := range []string{"user:1", "user:2", "user:3"} {
		a.gone(t, k)
	}
	if !a.has(t, "order:1") {
		t.Error("order:1 carries another tag but is gone")
	}
	r = cli(t, "keys", "--config", a.config)
	wantCode(t, r, exitOK)
	if strings.Contains(r.stdout, "user:") {
		t.Errorf("Redis still holds users:\n%s", r.stdout)
	}
}

func TestInvalidate_PrefixIsRefusedUnlessTheLibraryOffersIt(t *testing.T) {
	a := startApp(t)
	r := cli(t, "invalidate", "--prefix", "user:", "--config", a.config)
	if _, ok := any(a.cache).(prefixInvalidator); ok {
		wantCode(t, r, exitOK)
		a.gone(t, "user:1")
		return
	}
	wantCode(t, r, exitFailure)
	wantIn(t, "stderr", r.stderr, "--prefix is not supported", "layercache keys --prefix")
	if !a.has(t, "user:1") {
		t.Error("a refused invalidation removed user:1")
	}
}

func TestPing_AllLayersUp(t *testing.T) {
	a := startApp(t)
	r := cli(t, "ping", "--config", a.config)
	wantCode(t, r, exitOK)
	wantRow(t, r.stdout, "layers[0] (memory)", "up", "-", "in-process")
	wantRow(t, r.stdout, "layers[1] (redis)", "up")
	wantRow(t, r.stdout, "layers[2] (disk)", "up", "-", "held", "by", "a", "running", "application")

	r = cli(t, "ping", "--json", "--config", a.config)
	wantCode(t, r, exitOK)
	var got []pingResult
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("ping --json: %v\n%s", err, r.stdout)
	}
	if len(got) != 3 || !got[1].Up || got[1].Latency == nil || *got[1].Latency <= 0 {
		t.Errorf("ping --json = %s", r.stdout)
	}
}

func TestPing_UnreachableRedisExitsOneNamingTheLayer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	path := writeConfig(t, fmt.Sprintf("layers:\n  - driver: memory\n  - driver: redis\n    url: redis://%s/0\n", addr))
	r := cli(t, "ping", "--config", path)
	wantCode(t, r, exitFailure)
	wantRow(t, r.stdout, "layers[0] (memory)", "up")
	wantRow(t, r.stdout, "layers[1] (redis)", "DOWN")
	wantIn(t, "stderr", r.stderr, "down: layers[1] (redis)", "connection refused")

	// And a Redis that accepts connections but answers nothing.
	srv := redistest.Start(t)
	srv.Pause()
	defer srv.Resume()
	path = writeConfig(t, fmt.Sprintf("layers:\n  - driver: redis\n    url: %s\n    timeout: 200ms\n", srv.URL()))
	r = cli(t, "ping", "--config", path)
	wantCode(t, r, exitFailure)
	wantIn(t, "stderr", r.stderr, "down: layers[0] (redis)")
}

func TestStats_FromTheApplicationsEndpoint(t *testing.T) {
	a := startApp(t)
	for range 3 {
		if _, _, err := layercache.Lookup[user](t.Context(), a.cache, "user:1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := layercache.Lookup[user](t.Context(), a.cache, "user:99"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: layercache.StatsHandler(a.cache), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	url := "http://" + ln.Addr().String() + "/"

	r := cli(t, "stats", "--url", url)
	wantCode(t, r, exitOK)
	lines := strings.Split(r.stdout, "\n")
	wantIn(t, "header", lines[0], "LAYER", "HITS", "MISSES", "BREAKER")
	// memory answered the three reads of user:1; user:99 missed everywhere.
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != "memory" || f[1] != "3" || f[2] != "1" {
		t.Errorf("memory row %q, want 3 hits and 1 miss", lines[1])
	}
	wantIn(t, "redis row", lines[2], "redis", "closed")

	r = cli(t, "stats", "--json", "--url", url)
	wantCode(t, r, exitOK)
	var s remoteStats
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || len(s.Layers) != 3 || s.Layers[0].Hits != 3 {
		t.Errorf("stats --json: %v\n%s", err, r.stdout)
	}

	r = cli(t, "stats", "--url", "http://"+ln.Addr().String()+"/nothing-here", "--header", "bad")
	wantCode(t, r, exitUsage)
}

func TestStats_TheLayersOwnFigures(t *testing.T) {
	a := startApp(t)
	r := cli(t, "stats", "--config", a.config)
	wantCode(t, r, exitOK)
	wantIn(t, "stdout", r.stdout, "layers[0] (memory)", "use --url", "layers[1] (redis)", "db_keys=", "keyspace_hits=",
		"layers[2] (disk)", "held by a running application")
	if err := a.cache.Close(); err != nil {
		t.Fatal(err)
	}
	r = cli(t, "stats", "--json", "--config", a.config)
	wantCode(t, r, exitOK)
	var got []layerFigures
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 3 {
		t.Fatalf("stats --json: %v\n%s", err, r.stdout)
	}
	if got[2].Figures["entries"] != "5" {
		t.Errorf("disk figures %v, want 5 entries", got[2].Figures)
	}
}
