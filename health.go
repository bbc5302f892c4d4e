package layercache

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/layercache/layercache/driver"
)

// HealthStatus says whether a part of the cache answers.
type HealthStatus string

// The statuses a part of the cache can be in.
const (
	HealthUp      HealthStatus = "up"      // it answered, or lives in the process
	HealthDown    HealthStatus = "down"    // it failed its check, or its breaker is open
	HealthUnknown HealthStatus = "unknown" // it offers no way to check it
)

// Pinger is implemented by a [driver.Bus] or [driver.Coordinator] that can
// check a round trip to its server, as [driver.Pinger] is by layers.
// [Cache.Health] pings it within the cache's degradation timeout. Without
// it (and without [ConnectionReporter]) the part's health is unknown.
type Pinger interface {
	Ping(ctx context.Context) error
}

// ConnectionReporter is implemented by a [driver.Bus] or
// [driver.Coordinator] that knows whether it holds its connection now (a
// bus: whether its subscription is confirmed and not lost since).
// [Cache.Health] reports a part that says false as down, without pinging it.
type ConnectionReporter interface {
	Connected() bool
}

// HealthReport is the state of a cache's layers, bus and coordinator, as
// [Cache.Health] found it.
type HealthReport struct {
	// Ready is false when the cache is closed or a required layer is
	// down. Every layer outside the process is required: while one is
	// down the cache still answers (reads miss there and fall through,
	// writes skip it), but without the data the instances share, so a
	// load balancer had better send traffic to instances that have it.
	// The bus and the coordinator do not count: without them the cache
	// still serves correct values (it drops its in-process entries when
	// the bus reconnects, and loads without coordination).
	Ready bool

	Layers []LayerHealth // in lookup order

	// Bus and Coordinator are nil when the cache has none.
	Bus         *ComponentHealth `json:",omitempty"`
	Coordinator *ComponentHealth `json:",omitempty"`
}

// LayerHealth is one layer's part of a [HealthReport].
type LayerHealth struct {
	Name      string
	InProcess bool // in-process layers are always up
	Required  bool // its being down makes the cache not ready

	// Status is up when the layer is in-process, or when its breaker is
	// not open and it answered a ping (a layer that cannot be pinged,
	// [driver.Pinger], is taken to answer).
	Status HealthStatus

	// Latency is how long the ping took; zero when there was none or it
	// failed.
	Latency time.Duration `json:",omitzero"`

	Breaker BreakerState // always closed for in-process layers

	// RetryAt is, while the breaker is open, when it lets the next
	// operation through to probe the layer; the zero time otherwise.
	RetryAt time.Time `json:",omitzero"`

	// Error says why the layer is down.
	Error string `json:",omitempty"`
}

// ComponentHealth is the bus's or the coordinator's part of a
// [HealthReport].
type ComponentHealth struct {
	Status  HealthStatus
	Latency time.Duration `json:",omitzero"` // of the ping, when there was one and it answered
	Error   string        `json:",omitempty"`
}

// Health checks every part of the cache and reports their state: for each
// layer its status, ping latency, breaker state and, when the breaker is
// open, when it will next be tried; whether the bus is connected and the
// coordinator reachable, when they can tell (see [Pinger] and
// [ConnectionReporter]); and whether the cache is ready. The checks run
// concurrently, each bounded by its layer's timeout (the degradation
// timeout for the bus and coordinator) and by ctx.
//
// A layer's ping is an operation like any other on the layer: it is not
// sent while the breaker is open, counts towards opening it, and once
// RetryAfter has passed is the probe that can close it again. Health
// checks therefore bring a recovered layer back into use even when no
// other traffic reaches the cache.
//
// Health is safe for concurrent use. After Close it reports every layer
// down and the cache not ready, without contacting anything.
func (c *Cache) Health(ctx context.Context) HealthReport {
	r := HealthReport{Layers: make([]LayerHealth, len(c.layers))}
	closed := c.closed.Load()
	var checks []func()
	for i, l := range c.layers {
		h := &r.Layers[i]
		h.Name, h.InProcess, h.Required = l.name, l.inProcess, !l.inProcess
		switch {
		case closed:
			h.Status, h.Error = HealthDown, ErrClosed.Error()
		case l.inProcess:
			h.Status = HealthUp
		default:
			checks = append(checks, func() { checkLayer(ctx, l, h) })
		}
	}
	if c.bus != nil {
		r.Bus = &ComponentHealth{}
		checks = append(checks, func() { c.checkComponent(ctx, c.bus, r.Bus, closed) })
	}
	if c.coordinator != nil {
		r.Coordinator = &ComponentHealth{}
		checks = append(checks, func() { c.checkComponent(ctx, c.coordinator, r.Coordinator, closed) })
	}
	runAll(checks)

	r.Ready = !closed
	for _, h := range r.Layers {
		if h.Required && h.Status != HealthUp {
			r.Ready = false
		}
	}
	return r
}

// runAll runs checks side by side and returns when all are done; a lone
// check (one Redis layer, the common stack) runs on the caller's goroutine.
func runAll(checks []func()) {
	if len(checks) == 1 {
		checks[0]()
		return
	}
	var wg sync.WaitGroup
	for _, check := range checks {
		wg.Go(check)
	}
	wg.Wait()
}

// checkLayer fills h for a layer outside the process.
func checkLayer(ctx context.Context, l *layer, h *LayerHealth) {
	var err error
	if p, ok := l.Layer.(driver.Pinger); ok {
		start := time.Now()
		if err = l.do(ctx, "ping", p.Ping); err == nil {
			h.Latency = time.Since(start)
		}
	}
	// Read after the ping, which may have moved the breaker.
	h.Breaker, h.RetryAt = l.breaker.status()
	switch {
	case err != nil:
		h.Status, h.Error = HealthDown, err.Error()
	case h.Breaker == BreakerOpen:
		h.Status = HealthDown
		h.Error = (&LayerError{Op: "ping", Layer: l.name, Err: ErrLayerUnavailable}).Error()
	default:
		h.Status = HealthUp
	}
}

// errNotConnected is the error of a part that reports it is not connected.
var errNotConnected = errors.New("not connected")

// checkComponent fills h for the bus or the coordinator.
func (c *Cache) checkComponent(ctx context.Context, part any, h *ComponentHealth, closed bool) {
	h.Status = HealthUnknown
	if closed {
		h.Status, h.Error = HealthDown, ErrClosed.Error()
		return
	}
	if cr, ok := part.(ConnectionReporter); ok {
		if !cr.Connected() {
			h.Status, h.Error = HealthDown, errNotConnected.Error()
			return
		}
		h.Status = HealthUp
	}
	if p, ok := part.(Pinger); ok {
		pctx, cancel := context.WithTimeout(ctx, c.publishTimeout)
		defer cancel()
		start := time.Now()
		if err := p.Ping(pctx); err != nil {
			h.Status, h.Error = HealthDown, err.Error()
			return
		}
		h.Status, h.Latency = HealthUp, time.Since(start)
	}
}

// HealthHandler returns an http.Handler that serves c's [Cache.Health] as
// JSON, with status 200 when the cache is ready and 503 Service Unavailable
// when it is not, for a readiness probe:
//
//	mux.Handle("GET /readyz", layercache.HealthHandler(c, layercache.WithAuthorization(isProbe)))
//
// It takes the same options and applies the same access rule as
// [StatsHandler]: without [WithAuthorization] it serves only requests from
// loopback addresses and answers every other with 403 Forbidden, which a
// probe from another host (such as a Kubernetes kubelet) is. Give it an
// authorization function that admits the probe. The report holds layer
// names, statuses and error messages, which may name servers' addresses;
// no keys or values.
//
// Each request runs the checks under the request's context.
func HealthHandler(c *Cache, opts ...HandlerOption) http.Handler {
	return guarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		serveHealth(w, r, c)
	}), opts)
}

// serveHealth writes c's health report, 200 when ready and 503 when not.
func serveHealth(w http.ResponseWriter, r *http.Request, c *Cache) {
	rep := c.Health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if rep.Ready {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}
