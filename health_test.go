package layercache_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// pingedBus is the Redis bus with a Ping of its server, as a bus that
// implements layercache.Pinger.
type pingedBus struct {
	*redis.Bus
	client *goredis.Client
}

func (b pingedBus) Ping(ctx context.Context) error { return b.client.Ping(ctx).Err() }

// pingedCoordinator is the Redis coordinator with a Ping of its server.
type pingedCoordinator struct {
	*redis.Coordinator
	client *goredis.Client
}

func (c pingedCoordinator) Ping(ctx context.Context) error { return c.client.Ping(ctx).Err() }

// reportingBus is the Redis bus with a connection state set by the test,
// as a bus that implements layercache.ConnectionReporter.
type reportingBus struct {
	*redis.Bus
	connected *atomic.Bool
}

func (b reportingBus) Connected() bool { return b.connected.Load() }

// healthJSON is what HealthHandler serves, read back with the types JSON
// has.
type healthJSON struct {
	Ready  bool
	Layers []struct {
		Name      string
		InProcess bool
		Required  bool
		Status    string
		Latency   int64
		Breaker   string
		RetryAt   time.Time
		Error     string
	}
	Bus, Coordinator *struct {
		Status  string
		Latency int64
		Error   string
	}
}

// fetchHealth GETs url and decodes the report.
func fetchHealth(t *testing.T, url string) (int, healthJSON) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthJSON
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

func healthBus(t *testing.T, client *goredis.Client) *redis.Bus {
	t.Helper()
	b, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "health"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func healthCoordinator(t *testing.T, client *goredis.Client) *redis.Coordinator {
	t.Helper()
	co, err := redis.NewCoordinator(redis.CoordinatorOptions{Client: client, Namespace: "health"})
	if err != nil {
		t.Fatal(err)
	}
	return co
}

func TestHealth_InProcessOnlyIsReady(t *testing.T) {
	c, _ := memCache(t)
	r := c.Health(context.Background())
	if !r.Ready || len(r.Layers) != 1 || r.Bus != nil || r.Coordinator != nil {
		t.Fatalf("%+v", r)
	}
	if l := r.Layers[0]; l.Status != layercache.HealthUp || !l.InProcess || l.Required || l.Breaker != layercache.BreakerClosed {
		t.Fatalf("%+v", l)
	}
}

func TestHealth_PausedRedisIsDownAndHandlerAnswers503UntilItResumes(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client(t)
	client.Options().MaxRetries = -1
	const retryAfter = 200 * time.Millisecond
	c := redisStack(t, client, redis.Options{Timeout: 150 * time.Millisecond},
		layercache.WithDegradation(layercache.Degradation{FailureThreshold: 2, RetryAfter: retryAfter}),
		layercache.WithNamespace("health"),
		layercache.WithBus(pingedBus{healthBus(t, srv.Client(t)), client}),
		layercache.WithCoordinator(pingedCoordinator{healthCoordinator(t, srv.Client(t)), client}))
	web := httptest.NewServer(layercache.HealthHandler(c))
	t.Cleanup(web.Close)
	stats := httptest.NewServer(layercache.StatsHandler(c))
	t.Cleanup(stats.Close)

	code, h := fetchHealth(t, web.URL)
	if code != http.StatusOK || !h.Ready {
		t.Fatalf("healthy Redis: %d %+v", code, h)
	}
	l2 := h.Layers[1]
	if l2.Name != "redis" || l2.Status != "up" || !l2.Required || l2.Latency <= 0 || l2.Breaker != "closed" || !l2.RetryAt.IsZero() {
		t.Fatalf("healthy Redis layer: %+v", l2)
	}
	if h.Bus == nil || h.Bus.Status != "up" || h.Coordinator == nil || h.Coordinator.Status != "up" {
		t.Fatalf("bus %+v, coordinator %+v", h.Bus, h.Coordinator)
	}

	srv.Pause()
	eventually(t, "the handler to answer 503", func() bool {
		code, h = fetchHealth(t, web.URL)
		return code == http.StatusServiceUnavailable
	})
	if h.Ready || h.Layers[1].Status != "down" || h.Layers[1].Error == "" || h.Layers[0].Status != "up" {
		t.Fatalf("paused Redis: %+v", h)
	}
	// StatsHandler answers the same probe with ?ready, and its statistics
	// stay readable meanwhile.
	if code, _ := fetchHealth(t, stats.URL+"?ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("StatsHandler ?ready with Redis paused: %d, want 503", code)
	}
	if resp, err := http.Get(stats.URL); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("StatsHandler with Redis paused: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if h.Bus.Status != "down" || h.Coordinator.Status != "down" || h.Bus.Error == "" {
		t.Fatalf("paused Redis: bus %+v, coordinator %+v", h.Bus, h.Coordinator)
	}
	// Health checks alone open the breaker, which then says when it will
	// try the layer again.
	eventually(t, "the breaker to open", func() bool {
		r := c.Health(context.Background()).Layers[1]
		return r.Breaker == layercache.BreakerOpen && !r.RetryAt.IsZero() && r.Status == layercache.HealthDown
	})

	srv.Resume()
	// With no other traffic, the health checks' pings are the probes that
	// close the breaker again.
	eventually(t, "the handler to answer 200", func() bool {
		code, h = fetchHealth(t, web.URL)
		return code == http.StatusOK
	})
	if l2 := h.Layers[1]; !h.Ready || l2.Status != "up" || l2.Breaker != "closed" || !l2.RetryAt.IsZero() || l2.Error != "" {
		t.Fatalf("resumed Redis: %+v", h)
	}
	if s := c.Stats(); s.Loads != 0 {
		t.Fatalf("%d loads: health checks alone must have done all this", s.Loads)
	}
}

func TestHealth_BusAndCoordinatorThatCannotTellAreUnknown(t *testing.T) {
	srv := redistest.Start(t)
	// A bus and a coordinator with neither Ping nor Connected.
	c := redisStack(t, srv.Client(t), redis.Options{}, layercache.WithNamespace("health"),
		layercache.WithBus(&manualBus{}), layercache.WithCoordinator(localCoord{}))
	r := c.Health(context.Background())
	if !r.Ready || r.Bus == nil || r.Bus.Status != layercache.HealthUnknown || r.Coordinator == nil || r.Coordinator.Status != layercache.HealthUnknown {
		t.Fatalf("%+v bus %+v coordinator %+v", r, r.Bus, r.Coordinator)
	}
}

func TestHealth_DisconnectedBusIsDownButCacheStaysReady(t *testing.T) {
	srv := redistest.Start(t)
	var connected atomic.Bool
	connected.Store(true)
	c := redisStack(t, srv.Client(t), redis.Options{}, layercache.WithNamespace("health"),
		layercache.WithBus(reportingBus{healthBus(t, srv.Client(t)), &connected}))
	if r := c.Health(context.Background()); !r.Ready || r.Bus.Status != layercache.HealthUp {
		t.Fatalf("connected: %+v bus %+v", r, r.Bus)
	}
	connected.Store(false)
	if r := c.Health(context.Background()); !r.Ready || r.Bus.Status != layercache.HealthDown || r.Bus.Error == "" {
		t.Fatalf("disconnected: %+v bus %+v", r, r.Bus)
	}
}

func TestHealth_LayerWithoutPingFollowsItsBreaker(t *testing.T) {
	l2 := newByteLayer()
	c := newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{FailureThreshold: 1, RetryAfter: time.Hour}))
	ctx := context.Background()
	if r := c.Health(ctx); !r.Ready || r.Layers[1].Status != layercache.HealthUp || r.Layers[1].Latency != 0 {
		t.Fatalf("%+v", r)
	}
	calls := l2.calls.Load()
	if calls != 0 {
		t.Fatalf("health touched a layer it cannot ping %d times", calls)
	}
	l2.failing.Store(true)
	if _, err := layercache.Get(ctx, c, "k", func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	r := c.Health(ctx)
	if l := r.Layers[1]; r.Ready || l.Status != layercache.HealthDown || l.Breaker != layercache.BreakerOpen || l.RetryAt.IsZero() || l.Error == "" {
		t.Fatalf("after a failure: %+v", r)
	}
}

func TestHealth_ClosedCacheIsNotReady(t *testing.T) {
	srv := redistest.Start(t)
	c := redisStack(t, srv.Client(t), redis.Options{}, layercache.WithBus(healthBus(t, srv.Client(t))))
	must(t, c.Close())
	r := c.Health(context.Background())
	if r.Ready {
		t.Fatal("a closed cache is ready")
	}
	for _, l := range r.Layers {
		if l.Status != layercache.HealthDown {
			t.Fatalf("layer of a closed cache: %+v", l)
		}
	}
	if r.Bus.Status != layercache.HealthDown {
		t.Fatalf("bus of a closed cache: %+v", r.Bus)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	layercache.HealthHandler(c).ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("handler of a closed cache: %d", w.Code)
	}
}

func TestHealthHandler_AppliesTheEndpointAccessRule(t *testing.T) {
	c, _ := memCache(t)
	serveFrom := func(h http.Handler, method, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/readyz", nil)
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	local := layercache.HealthHandler(c)
	for _, tc := range []struct {
		h      http.Handler
		method string
		remote string
		want   int
	}{
		{local, http.MethodGet, "127.0.0.1:4000", http.StatusOK},
		{local, http.MethodHead, "[::1]:4000", http.StatusOK},
		{local, http.MethodGet, "192.0.2.7:4000", http.StatusForbidden},
		{local, http.MethodPost, "127.0.0.1:4000", http.StatusMethodNotAllowed},
		{layercache.HealthHandler(c, layercache.WithAuthorization(func(r *http.Request) bool {
			return r.Header.Get("X-Probe") == "" // nothing sent: admitted
		})), http.MethodGet, "192.0.2.7:4000", http.StatusOK},
	} {
		w := serveFrom(tc.h, tc.method, tc.remote)
		if w.Code != tc.want {
			t.Errorf("%s from %s: %d, want %d", tc.method, tc.remote, w.Code, tc.want)
		}
		if tc.want == http.StatusOK && tc.method == http.MethodGet && !strings.Contains(w.Body.String(), `"Ready": true`) {
			t.Errorf("body %s", w.Body)
		}
	}
}

// BenchmarkHealth checks a memory + Redis stack, next to its baseline in
// the same run: a raw go-redis PING on the same server. The ratio is the
// cost of a health check over the round trip it cannot avoid.
func BenchmarkHealth(b *testing.B) {
	srv := redistest.Start(b)
	client := srv.Client(b)
	ctx := context.Background()
	b.Run("baseline=raw-go-redis-ping", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := client.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	l2, err := redis.New(redis.Options{Client: srv.Client(b), Prefix: "bench:"})
	if err != nil {
		b.Fatal(err)
	}
	c := newCache(b, []driver.Layer{newMemory(b, memoryOpts), l2})
	b.Run("layers=memory+redis/health", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := c.Health(ctx); !r.Ready {
				b.Fatalf("%+v", r)
			}
		}
	})
	// The two interleaved, so that drift in the machine's load hits both
	// alike: the reported ratio is the claim.
	b.Run("layers=memory+redis/interleaved", func(b *testing.B) {
		var ping, health time.Duration
		for b.Loop() {
			t0 := time.Now()
			err := client.Ping(ctx).Err()
			t1 := time.Now()
			r := c.Health(ctx)
			t2 := time.Now()
			if err != nil || !r.Ready {
				b.Fatal(err, r)
			}
			ping += t1.Sub(t0)
			health += t2.Sub(t1)
		}
		b.ReportMetric(float64(health)/float64(ping), "x-vs-ping")
	})
}

// The Redis bus and coordinator report their own health.
func TestHealth_RedisBusAndCoordinatorPing(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client(t)
	bus, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "health"})
	if err != nil {
		t.Fatal(err)
	}
	co, err := redis.NewCoordinator(redis.CoordinatorOptions{Client: client, Namespace: "health"})
	if err != nil {
		t.Fatal(err)
	}
	c := redisStack(t, client, redis.Options{}, layercache.WithBus(bus), layercache.WithCoordinator(co))
	ctx := context.Background()
	r := c.Health(ctx)
	if r.Bus == nil || r.Bus.Status != layercache.HealthUp || r.Coordinator == nil || r.Coordinator.Status != layercache.HealthUp {
		t.Fatalf("bus %+v, coordinator %+v; want both up", r.Bus, r.Coordinator)
	}
	srv.Pause()
	defer srv.Resume()
	r = c.Health(ctx)
	if r.Bus.Status != layercache.HealthDown || r.Coordinator.Status != layercache.HealthDown {
		t.Fatalf("with Redis paused: bus %+v, coordinator %+v; want both down", r.Bus, r.Coordinator)
	}
}
