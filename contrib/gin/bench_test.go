package gincache_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ginc "github.com/chenyahui/gin-cache"
	"github.com/chenyahui/gin-cache/persist"
	"github.com/gin-gonic/gin"

	"github.com/layercache/layercache"
	gincache "github.com/layercache/layercache/contrib/gin"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// loadConns is how many keep-alive connections the load generator keeps
// busy, each with one request in flight.
const loadConns = 40

// slowRouteDelay is what the uncached slow route spends per request, as a
// database query would.
const slowRouteDelay = 10 * time.Millisecond

// BenchmarkLoad measures a Gin server over loopback under 40 concurrent
// connections, for one route that returns a constant 1 KB body:
//
//	case=a-bare                  the bare Gin handler (the baseline)
//	case=b-gincache-memory       behind gincache on a memory layer
//	case=c-gincache-memory+redis behind gincache on memory + Redis (+ bus)
//	case=d-gin-cache-memory      behind github.com/chenyahui/gin-cache v1.10.0 on its memory store
//	case=e-uncached-slow         the same body from a handler that takes 10ms, uncached
//	case=f-gin-cache-same-headers d, with the ETag and X-Cache headers gincache adds to a hit
//
// Each op is one request; req/s, p50 and p99 latency are reported. The
// cached cases check that the handler ran once (every measured request was
// a hit) and every request checks its response's status and body.
//
//	go test -run '^$' -bench 'Load$' -benchtime 3s -count 5 ./contrib/gin
func BenchmarkLoad(b *testing.B) {
	for _, tc := range loadCases() {
		b.Run("case="+tc.name, func(b *testing.B) {
			load(b, tc.handler(b), "/item", loadBody)
			tc.check(b)
		})
	}
}

// BenchmarkLoadInterleaved runs the cases of BenchmarkLoad in short turns
// (500 requests each, all servers up at once) round after round, in a
// shuffled order, so that the changing load of a shared machine falls on
// every case alike. This is the benchmark to read on a shared machine.
//
// Per case (prefixed a- to f-) it reports the median over rounds of the
// throughput, the p50/p99 latency over all requests and the process's CPU
// time per request (server and load generator: what other processes cannot
// take). It also reports the medians over rounds of the throughput ratios
// b/a, c/a, b/d and b/f, each comparing turns run moments apart, and the same
// comparisons in CPU per request (cpu:b/a is the CPU a request costs with
// the cache over what it costs without; below 1 is cheaper). One op is one
// request to each case.
//
//	go test -run '^$' -bench LoadInterleaved -benchtime 150000x -count 5 ./contrib/gin
func BenchmarkLoadInterleaved(b *testing.B) {
	cases := loadCases()
	targets := make([]*target, len(cases))
	for i, tc := range cases {
		targets[i] = newTarget(b, tc.handler(b), "/item", loadBody)
	}
	const turn = 500
	cpu := make([]time.Duration, len(cases))
	lat := make([][]time.Duration, len(cases))
	rates := make([][]float64, len(cases)) // per round
	// The order of the cases changes every round, so that none always
	// follows the same other (and inherits, say, its garbage to collect).
	order := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(turn, b.N-done)
		for _, i := range order.Perm(len(cases)) {
			n := n
			if cases[i].slow {
				// The slow case costs the machine little but would take
				// most of the time: a tenth of its turn gives its rate.
				n = max(n/10, 1)
			}
			d, c, l, err := targets[i].run(n, lat[i])
			if err != nil {
				b.Fatal(err)
			}
			cpu[i] += c
			lat[i] = l
			rates[i] = append(rates[i], float64(n)/d.Seconds())
		}
		done += n
	}
	b.StopTimer()
	cpuPerReq := make([]float64, len(cases))
	for i, tc := range cases {
		tc.check(b)
		slices.Sort(lat[i])
		cpuPerReq[i] = float64(cpu[i]) / 1e3 / float64(len(lat[i]))
		p := tc.name[:1] + "-"
		b.ReportMetric(median(rates[i]), p+"req/s")
		b.ReportMetric(float64(percentile(lat[i], 0.50))/1e3, p+"p50-µs")
		b.ReportMetric(float64(percentile(lat[i], 0.99))/1e3, p+"p99-µs")
		b.ReportMetric(cpuPerReq[i], p+"cpu-µs/req")
	}
	ratio := func(x, y int) float64 {
		r := make([]float64, len(rates[x]))
		for k := range r {
			r[k] = rates[x][k] / rates[y][k]
		}
		return median(r)
	}
	b.ReportMetric(ratio(1, 0), "b/a")
	b.ReportMetric(ratio(2, 0), "c/a")
	b.ReportMetric(ratio(1, 3), "b/d")
	b.ReportMetric(ratio(1, 5), "b/f")
	b.ReportMetric(cpuPerReq[1]/cpuPerReq[0], "cpu:b/a")
	b.ReportMetric(cpuPerReq[1]/cpuPerReq[3], "cpu:b/d")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// loadBody is the route's constant 1 KB body.
var loadBody = bytes.Repeat([]byte("0123456789abcdef"), 64)

type loadCase struct {
	name    string
	handler func(tb testing.TB) http.Handler
	slow    bool
	check   func(b *testing.B) // after the run
}

func loadCases() []loadCase {
	route := func(handlers ...gin.HandlerFunc) http.Handler {
		r := gin.New()
		r.GET("/item", handlers...)
		return r
	}
	// cached is a case whose handler must have run once: every measured
	// request was a hit.
	// The handler sets headers too, when extra is given.
	cached := func(name string, middleware func(tb testing.TB) gin.HandlerFunc, extra ...string) loadCase {
		var runs atomic.Int64
		return loadCase{
			name: name,
			handler: func(tb testing.TB) http.Handler {
				return route(middleware(tb), func(gc *gin.Context) {
					runs.Add(1)
					for i := 0; i+1 < len(extra); i += 2 {
						gc.Header(extra[i], extra[i+1])
					}
					gc.Data(http.StatusOK, "text/plain; charset=utf-8", loadBody)
				})
			},
			check: func(b *testing.B) {
				if n := runs.Swap(0); n != 1 {
					b.Fatalf("%s: handler ran %d times: not every measured request was a hit", name, n)
				}
			},
		}
	}
	none := func(*testing.B) {}
	return []loadCase{
		{name: "a-bare", check: none, handler: func(testing.TB) http.Handler {
			return route(func(gc *gin.Context) { gc.Data(http.StatusOK, "text/plain; charset=utf-8", loadBody) })
		}},
		cached("b-gincache-memory", func(tb testing.TB) gin.HandlerFunc {
			return gincache.New(benchMemoryCache(tb), gincache.Options{TTL: time.Hour})
		}),
		cached("c-gincache-memory+redis", func(tb testing.TB) gin.HandlerFunc {
			return gincache.New(benchRedisCache(tb), gincache.Options{TTL: time.Hour})
		}),
		cached("d-gin-cache-memory", func(testing.TB) gin.HandlerFunc {
			return ginc.CacheByRequestURI(persist.NewMemoryStore(time.Hour), time.Hour)
		}),
		{name: "e-uncached-slow", slow: true, check: none, handler: func(testing.TB) http.Handler {
			return route(func(gc *gin.Context) {
				time.Sleep(slowRouteDelay)
				gc.Data(http.StatusOK, "text/plain; charset=utf-8", loadBody)
			})
		}},
		// gin-cache with responses of gincache's size: the handler sends
		// the two headers gincache adds to a hit, which gin-cache stores
		// and replays.
		cached("f-gin-cache-same-headers", func(testing.TB) gin.HandlerFunc {
			return ginc.CacheByRequestURI(persist.NewMemoryStore(time.Hour), time.Hour)
		}, "Etag", `"a1b2c3d4e5f60718"`, "X-Cache", "HIT"),
	}
}

func benchMemoryCache(b testing.TB) *layercache.Cache {
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func benchRedisCache(b testing.TB) *layercache.Cache {
	srv := redistest.Start(b)
	client := srv.Client(b)
	l1, err := memory.New(memory.Options{MaxSize: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	l2, err := redis.New(redis.Options{Client: client, Prefix: "bench:"})
	if err != nil {
		b.Fatal(err)
	}
	bus, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l1, l2}, layercache.WithBus(bus))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// target is a server on a loopback listener and loadConns keep-alive
// connections to it, on which the load generator sends GET requests for
// one path and checks that each answer is 200 with the route's body. The
// client is a minimal HTTP/1.1 reader on raw connections, so that the
// generator takes as little as possible of the CPU the server needs.
type target struct {
	srv     *http.Server
	clients []*rawClient
}

func newTarget(b *testing.B, h http.Handler, path string, want []byte) *target {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	t := &target{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	served := make(chan struct{})
	go func() { defer close(served); _ = t.srv.Serve(ln) }()
	b.Cleanup(func() { _ = t.srv.Close(); <-served })

	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: layercache-bench\r\n\r\n")
	for range loadConns {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = conn.Close() })
		t.clients = append(t.clients, &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), req: req, want: want})
	}
	// Warm up: one request first (it fills the cache), then one per
	// connection.
	for i, c := range append([]*rawClient{t.clients[0]}, t.clients...) {
		if err := c.do(); err != nil {
			b.Fatalf("warm-up request %d: %v", i, err)
		}
	}
	return t
}

// run sends n requests over all connections at once, appends their
// latencies to lat and returns how long they took, in wall-clock and in
// the process's CPU time (server and load generator both).
func (t *target) run(n int, lat []time.Duration) (elapsed, cpu time.Duration, _ []time.Duration, _ error) {
	var next atomic.Int64
	per := make([][]time.Duration, len(t.clients))
	errs := make(chan error, len(t.clients))
	var wg sync.WaitGroup
	cpu0, start := processCPU(), time.Now()
	for i, c := range t.clients {
		per[i] = make([]time.Duration, 0, n/len(t.clients)+1)
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := c.do(); err != nil {
					errs <- err
					return
				}
				per[i] = append(per[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed, cpu = time.Since(start), processCPU()-cpu0
	close(errs)
	for _, p := range per {
		lat = append(lat, p...)
	}
	return elapsed, cpu, lat, <-errs
}

// load measures b.N requests to h.
func load(b *testing.B, h http.Handler, path string, want []byte) {
	t := newTarget(b, h, path, want)
	b.ReportAllocs()
	b.ResetTimer()
	elapsed, cpu, lat, err := t.run(b.N, make([]time.Duration, 0, b.N))
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(percentile(lat, 0.50))/1e3, "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99))/1e3, "p99-µs")
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/req")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// rawClient sends one request at a time on a keep-alive connection and
// reads the response: status line, headers up to the blank line, and a
// body of Content-Length bytes.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
	req  []byte
	want []byte
	body []byte
}

func (c *rawClient) do() error {
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", status)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 { // the blank line
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return fmt.Errorf("Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return err
	}
	if !bytes.Equal(c.body, c.want) {
		return fmt.Errorf("body of %d bytes differs from the route's", length)
	}
	return nil
}
