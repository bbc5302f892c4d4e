package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	gincache "github.com/layercache/layercache/contrib/gin"
)

func benchHTTP(ctx context.Context, env *benchEnv) (*table, error) {
	const conns, products, rounds = 40, 100, 3
	t := &table{
		Description: fmt.Sprintf("A Gin server whose handler queries the origin (%v) and renders JSON, loaded by %d keep-alive "+
			"connections, each asking for one of %d products at random. The cached rows put the gincache middleware in front of "+
			"the same handler. Each row is loaded for %v in all, in %d turns taken in rotation with the other rows, so that "+
			"changes in the machine's load fall on every row alike. Server and load generator share the machine.",
			originTime, conns, products, env.httpDur, rounds),
		Columns: []string{"stack", "requests/s (median of turns)", "p50", "p95", "p99", "handler runs", "speed-up vs no cache"},
	}
	gin.SetMode(gin.ReleaseMode)
	type variant struct {
		name  string
		spec  *stackSpec
		o     *origin
		st    *benchStack
		base  string
		stop  func()
		rates []float64
		lat   samples
	}
	variants := []*variant{
		{name: "no cache"},
		{name: "memory (gincache)", spec: &stackSpec{memory: true}},
		{name: "memory + Redis (gincache)", spec: &stackSpec{memory: true, redis: true}},
	}
	defer func() {
		for _, v := range variants {
			if v.stop != nil {
				v.stop()
			}
			if v.st != nil {
				v.st.Close()
			}
		}
	}()
	for _, v := range variants {
		v.o = &origin{d: originTime}
		handler := func(c *gin.Context) {
			id, _ := strconv.Atoi(c.Param("id"))
			it, err := v.o.load(id)(c.Request.Context())
			if err != nil {
				c.AbortWithStatus(http.StatusServiceUnavailable)
				return
			}
			c.JSON(http.StatusOK, it)
		}
		r := gin.New()
		if v.spec != nil {
			var err error
			if v.st, err = env.open(*v.spec); err != nil {
				return nil, err
			}
			r.GET("/products/:id", gincache.New(v.st.Cache, gincache.Options{TTL: time.Minute}), handler)
		} else {
			r.GET("/products/:id", handler)
		}
		var err error
		if v.base, v.stop, err = serveHTTP(r); err != nil {
			return nil, err
		}
	}
	turn := env.httpDur / rounds
	for range rounds {
		for _, v := range variants {
			lat, err := loadHTTP(ctx, v.base, conns, products, turn)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			v.rates = append(v.rates, float64(len(lat))/turn.Seconds())
			v.lat = append(v.lat, lat...)
		}
	}
	var baseline float64
	for _, v := range variants {
		slices.Sort(v.rates)
		rate := v.rates[len(v.rates)/2]
		if v.spec == nil {
			baseline = rate
		}
		t.row(v.name, strconv.FormatFloat(rate, 'f', 0, 64), fmtDur(v.lat.pct(50)), fmtDur(v.lat.pct(95)), fmtDur(v.lat.pct(99)),
			strconv.FormatInt(v.o.calls.Load(), 10), fmt.Sprintf("%.3gx", rate/baseline))
	}
	t.Notes = []string{"Without a cache the rate is bounded by the origin's latency times the connections; with one, by the CPU the server and the load generator share."}
	return t, nil
}

// serveHTTP serves h on a loopback port until stop is called.
func serveHTTP(h http.Handler) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/products/", func() { _ = srv.Close() }, nil
}

// loadHTTP requests base + a product id from conns keep-alive connections
// for d; it returns each request's latency.
func loadHTTP(ctx context.Context, base string, conns, products int, d time.Duration) (samples, error) {
	tr := &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	per := make([]samples, conns)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for i := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				start := time.Now()
				resp, err := client.Get(base + strconv.Itoa(rng.IntN(products)))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				per[i] = append(per[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return nil, *err
	}
	var all samples
	for _, s := range per {
		all = append(all, s...)
	}
	return all, ctx.Err()
}
