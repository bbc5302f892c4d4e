package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/layercache/layercache"
	_ "github.com/layercache/layercache/drivers/disk"
	_ "github.com/layercache/layercache/drivers/memory"
	_ "github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// The disk layer leaves nutsdb's write goroutine behind when it closes, by
// design of nutsdb; the disk driver's own tests ignore it the same way.
var ignoreNutsDBWriter = goleak.IgnoreTopFunction("github.com/nutsdb/nutsdb.(*DB).doWrites")

func exampleConfig(name string) string { return filepath.Join("examples", "configs", name) }

// openExample opens one of the example configurations and closes it in
// t.Cleanup.
func openExample(t *testing.T, name string, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	c, err := layercache.Open(exampleConfig(name), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func layerNames(c *layercache.Cache) []string {
	var names []string
	for _, l := range c.Stats().Layers {
		names = append(names, l.Name)
	}
	return names
}

func mustNotLoad(t *testing.T) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		t.Error("loader ran; the value should have come from a layer")
		return "", errors.New("unexpected load")
	}
}

// closedPortURL returns a redis:// URL on which nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "redis://" + addr + "/0"
}

func TestOpenStack_MemoryDiskSurvivesRestart(t *testing.T) {
	t.Setenv("LAYERCACHE_LAYERS__1__DIR", t.TempDir())
	ctx := context.Background()

	c, err := layercache.Open(exampleConfig("memory-disk.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(layerNames(c), ","); got != "memory,disk" {
		_ = c.Close()
		t.Fatalf("stack %s, want memory,disk", got)
	}
	if err := layercache.Set(ctx, c, "k", "kept"); err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	if v, err := layercache.Get(ctx, c, "k", mustNotLoad(t)); v != "kept" || err != nil {
		_ = c.Close()
		t.Fatal(v, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process: empty L1, same directory.
	c = openExample(t, "memory-disk.yaml")
	if v, err := layercache.Get(ctx, c, "k", mustNotLoad(t)); v != "kept" || err != nil {
		t.Fatal(v, err)
	}
	s := c.Stats()
	if s.Layers[0].Hits != 0 || s.Layers[1].Hits != 1 || s.Loads != 0 {
		t.Fatalf("after restart: L1 hits %d, disk hits %d, loads %d; want 0, 1, 0",
			s.Layers[0].Hits, s.Layers[1].Hits, s.Loads)
	}
}

func TestOpenStack_RedisExampleSharesLayerBusAndCoordinator(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv("LAYERCACHE_LAYERS__1__URL", srv.URL())
	ctx := context.Background()
	a := openExample(t, "redis.yaml")
	b := openExample(t, "redis.yaml")
	for _, c := range []*layercache.Cache{a, b} {
		if got := strings.Join(layerNames(c), ","); got != "memory,redis" {
			t.Fatalf("stack %s, want memory,redis", got)
		}
	}

	// A write by a is in Redis, under the file's namespace, for b to read.
	if err := layercache.Set(ctx, a, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.Do(t, "KEYS", "myapp:*").([]any); len(keys) == 0 {
		t.Fatal("no key under the namespace myapp: in Redis")
	}
	eventually(t, "b hears a's first write", func() bool { return b.Stats().BusReceived >= 1 })
	for range 2 { // an L2 hit, then an L1 hit
		if v, err := layercache.Get(ctx, b, "k", mustNotLoad(t)); v != "v1" || err != nil {
			t.Fatal(v, err)
		}
	}
	if h := b.Stats().Layers[0].Hits; h != 1 {
		t.Fatalf("b's L1 hits %d, want 1: the test needs v1 in b's L1", h)
	}

	// b holds v1 in L1; a's next write must reach it through the bus.
	heard := b.Stats().BusReceived
	if err := layercache.Set(ctx, a, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b hears a's second write", func() bool { return b.Stats().BusReceived > heard })
	if v, err := layercache.Get(ctx, b, "k", mustNotLoad(t)); v != "v2" || err != nil {
		t.Fatalf("b read %q, %v after a wrote v2: stale L1", v, err)
	}

	// A miss shared by both instances loads once. The loader holds until
	// every caller is waiting: in each instance one leader has missed in
	// Redis and the others are queued behind it. An instance that did not
	// then wait for the other through the coordinator would load again.
	const callers = 20
	var loads atomic.Int32
	release := make(chan struct{})
	loader := func(context.Context) (string, error) {
		loads.Add(1)
		<-release
		return "hot", nil
	}
	dedupBefore := a.Stats().Deduplicated + b.Stats().Deduplicated
	aMisses, bMisses := a.Stats().Layers[1].Misses, b.Stats().Layers[1].Misses
	var wg sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() { got[i], errs[i] = layercache.Get(ctx, c, "hot", loader) })
	}
	eventually(t, "every caller waiting on a load", func() bool {
		sa, sb := a.Stats(), b.Stats()
		return sa.Deduplicated+sb.Deduplicated-dedupBefore == callers-2 &&
			sa.Layers[1].Misses > aMisses && sb.Layers[1].Misses > bMisses && loads.Load() >= 1
	})
	close(release)
	wg.Wait()
	for i := range callers {
		if got[i] != "hot" || errs[i] != nil {
			t.Errorf("caller %d: %q, %v", i, got[i], errs[i])
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times across two instances, want 1", n)
	}
}

func TestOpenStack_ClusterExample(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	t.Setenv("LAYERCACHE_LAYERS__1__ADDRS", strings.Join(cl.Addrs(), ","))
	ctx := context.Background()
	a := openExample(t, "cluster.yaml")
	b := openExample(t, "cluster.yaml")
	if got := strings.Join(layerNames(a), ","); got != "memory,redis" {
		t.Fatalf("stack %s, want memory,redis", got)
	}

	const n = 60
	for i := range n {
		if err := layercache.Set(ctx, a, "key"+strconv.Itoa(i), "value"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// b's L1 is empty: every read is answered by the cluster.
	for i := range n {
		if v, err := layercache.Get(ctx, b, "key"+strconv.Itoa(i), mustNotLoad(t)); v != "value"+strconv.Itoa(i) || err != nil {
			t.Fatal(i, v, err)
		}
	}
	if h := b.Stats().Layers[1].Hits; h != n {
		t.Fatalf("cluster hits %d, want %d", h, n)
	}
	for i, node := range cl.Nodes() {
		if size, _ := node.Do(t, "DBSIZE").(int64); size == 0 {
			t.Errorf("node %d holds no key: keys did not spread over the cluster", i)
		}
	}
}

func TestOpenStack_UnreachableRedis(t *testing.T) {
	t.Setenv("LAYERCACHE_LAYERS__1__URL", closedPortURL(t))

	_, err := layercache.Open(exampleConfig("redis.yaml"))
	if err == nil {
		t.Fatal("Open succeeded with Redis unreachable")
	}
	for _, want := range []string{"layers[1]", `"redis"`, "unreachable", "start_degraded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}

	t.Run("StartDegraded", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		t.Setenv("LAYERCACHE_DEGRADATION__START_DEGRADED", "true")
		c, err := layercache.Open(exampleConfig("redis.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if st := c.Stats().Layers[1]; st.Name != "redis" || st.Breaker != layercache.BreakerOpen {
			t.Fatalf("layer %s breaker %v, want redis open", st.Name, st.Breaker)
		}
		ctx := context.Background()
		for i := range 3 {
			key := "k" + strconv.Itoa(i)
			v, err := layercache.Get(ctx, c, key, func(context.Context) (string, error) { return "loaded " + key, nil })
			if v != "loaded "+key || err != nil {
				t.Fatal(v, err)
			}
		}
		s := c.Stats()
		if s.Loads != 3 || s.Layers[1].Skipped == 0 {
			t.Fatalf("loads %d, redis skipped %d; want 3 loads with redis skipped", s.Loads, s.Layers[1].Skipped)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// connectedClients counts the server's client connections, the one asking
// included.
func connectedClients(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	list, _ := srv.Do(t, "CLIENT", "LIST").(string)
	n := 0
	for line := range strings.Lines(list) {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// connectionsReceived is the number of connections the server has accepted
// since it started, the one asking included.
func connectionsReceived(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	info, _ := srv.Do(t, "INFO", "stats").(string)
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO stats: %q", line)
			}
			return n
		}
	}
	t.Fatal("INFO stats has no total_connections_received")
	return 0
}

// An Open that fails after some blocks were opened closes them all again:
// no goroutine survives, every connection is closed and the disk layer's
// directory lock is released.
func TestOpenStack_FailedOpenReleasesEverything(t *testing.T) {
	const stack = `
namespace: leak
layers:
  - driver: memory
  - driver: redis
    url: %s
  - driver: disk
    dir: %s
`
	for _, tc := range []struct {
		name string
		tail string
		opts []layercache.Option
		want string
	}{
		{name: "UnknownLayerDriver", tail: "  - driver: nosuch\n", want: `unknown layer driver "nosuch"`},
		{name: "BadBusKey", tail: "bus: {driver: redis, bogus: 1}\n", want: "bus.bogus"},
		{
			name: "BadSingleflightAfterBus",
			tail: "bus: {driver: redis}\nsingleflight: {driver: redis, lease: 1ms}\n",
			want: "singleflight",
		},
		{
			name: "CacheOptionsRefused",
			tail: "bus: {driver: redis}\nsingleflight: {driver: redis}\n",
			opts: []layercache.Option{layercache.WithWriteBackQueue(0)},
			want: "write-back",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			dir := t.TempDir()
			path := writeConfig(t, fmt.Sprintf(stack, srv.URL(), dir)+tc.tail)
			baseline := connectedClients(t, srv)
			received := connectionsReceived(t, srv)
			leftBehind := goleak.IgnoreCurrent()
			// Sockets and lock files left open would be closed by their
			// finalizers once unreachable: with the collector off, only the
			// failed Open's own cleanup can close them.
			gcPercent := debug.SetGCPercent(-1)
			defer debug.SetGCPercent(gcPercent)

			c, err := layercache.Open(path, tc.opts...)
			if err == nil {
				_ = c.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %s", err, tc.want)
			}

			// The failed Open did reach the server (its ping at least), so
			// the count below has something to go back from.
			if n := connectionsReceived(t, srv) - received - 1; n < 1 {
				t.Fatalf("the failed Open made %d connections; the test needs it to connect", n)
			}
			// Redis notices closed sockets on its own schedule.
			eventually(t, fmt.Sprintf("connected clients back to %d", baseline), func() bool {
				return connectedClients(t, srv) == baseline
			})

			// The directory can be opened again: its lock was released.
			t.Setenv("LAYERCACHE_LAYERS__1__DIR", dir)
			c, err = layercache.Open(exampleConfig("memory-disk.yaml"))
			if err != nil {
				t.Fatalf("reopening the disk layer's directory: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}

			debug.SetGCPercent(gcPercent)
			goleak.VerifyNone(t, leftBehind, ignoreNutsDBWriter)
		})
	}
}
