package memcached

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/memcachedtest"
	"github.com/layercache/layercache/internal/redistest"
)

// The benchmarks run against a real memcached on loopback. Each claim has
// its baseline in the same run: raw gomemcache calls for the layer's
// overhead, Get in a loop for GetMany, gomemcache's default idle pool for
// the layer's.
//
//	go test -run '^$' -bench . -benchmem ./drivers/memcached

func benchLayer(b *testing.B, s *memcachedtest.Server, o Options) *Layer {
	b.Helper()
	o.Addrs = []string{s.Addr()}
	if o.Timeout == 0 {
		o.Timeout = roomyTimeout
	}
	return newLayerT(b, o)
}

// BenchmarkGet compares a layer hit with a raw gomemcache Get of the same
// bytes: the difference is the key mapping and the envelope's decoding.
func BenchmarkGet(b *testing.B) {
	s := memcachedtest.Start(b)
	ctx := context.Background()
	for _, size := range []int{16, 1 << 10, 64 << 10} {
		l := benchLayer(b, s, Options{})
		e := &driver.Entry{Payload: bytes.Repeat([]byte("x"), size), Codec: "raw", ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
		if err := l.Set(ctx, "k", e); err != nil {
			b.Fatal(err)
		}
		raw := memcache.New(s.Addr())
		raw.MaxIdleConns = DefaultMaxIdleConns
		b.Cleanup(func() { _ = raw.Close() })
		name := fmt.Sprintf("size=%s", sizeName(size))
		b.Run(name+"/raw-gomemcache", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := raw.Get("k"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/layer", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e, err := l.Get(ctx, "k"); err != nil || e == nil {
					b.Fatal(e, err)
				}
			}
		})
		b.Run(name+"/raw-gomemcache/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := raw.Get("k"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(name+"/layer/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if e, err := l.Get(ctx, "k"); err != nil || e == nil {
						b.Error(e, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGetTagged shows what a tagged entry costs to read: one more
// round trip for its tags' epochs, whatever their number.
func BenchmarkGetTagged(b *testing.B) {
	s := memcachedtest.Start(b)
	ctx := context.Background()
	l := benchLayer(b, s, Options{})
	for _, tags := range []int{0, 1, 10} {
		e := &driver.Entry{Payload: bytes.Repeat([]byte("x"), 1<<10), Codec: "raw"}
		for i := range tags {
			e.Tags = append(e.Tags, "tag"+strconv.Itoa(i))
		}
		key := "k" + strconv.Itoa(tags)
		if err := l.Set(ctx, key, e); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("tags=%d", tags), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e, err := l.Get(ctx, key); err != nil || e == nil {
					b.Fatal(e, err)
				}
			}
		})
	}
}

// BenchmarkGetMany compares one GetMany with the loop of Gets that the
// cache falls back to without driver.BatchGetter, and with a raw GetMulti.
func BenchmarkGetMany(b *testing.B) {
	s := memcachedtest.Start(b)
	ctx := context.Background()
	l := benchLayer(b, s, Options{})
	for _, n := range []int{10, 100} {
		keys := make([]string, n)
		stored := make([]string, n)
		for i := range keys {
			keys[i] = "k" + strconv.Itoa(i)
			stored[i] = l.storageKey(keys[i])
			if err := l.Set(ctx, keys[i], &driver.Entry{Payload: bytes.Repeat([]byte("x"), 1<<10), Codec: "raw"}); err != nil {
				b.Fatal(err)
			}
		}
		name := fmt.Sprintf("keys=%d/size=1KB", n)
		b.Run(name+"/loop-of-Get", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, k := range keys {
					if e, err := l.Get(ctx, k); err != nil || e == nil {
						b.Fatal(e, err)
					}
				}
			}
		})
		b.Run(name+"/GetMany", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.GetMany(ctx, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/raw-GetMulti", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.client.GetMulti(stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGetDeadline shows the price of honouring a context deadline
// shorter than the layer's timeout (the operation then runs on a goroutine
// of its own) against a context without one.
func BenchmarkGetDeadline(b *testing.B) {
	s := memcachedtest.Start(b)
	l := benchLayer(b, s, Options{Timeout: time.Hour})
	if err := l.Set(context.Background(), "k", &driver.Entry{Payload: []byte("v"), Codec: "raw"}); err != nil {
		b.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), time.Hour/2)
	defer cancel()
	long, cancel2 := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel2()
	for name, ctx := range map[string]context.Context{"ctx=deadline-after-timeout": long, "ctx=deadline-before-timeout": short} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if e, err := l.Get(ctx, "k"); err != nil || e == nil {
					b.Fatal(e, err)
				}
			}
		})
	}
}

// BenchmarkIdleConns runs parallel Gets with gomemcache's default of two
// idle connections per server and with the layer's default, which keeps a
// busy service from dialling a connection per operation. The server sits
// behind a proxy that adds half a millisecond each way, as a network
// would, so that many operations are in flight at once. The dials/op
// metric is the server's count of connections accepted, per operation.
func BenchmarkIdleConns(b *testing.B) {
	s := memcachedtest.Start(b)
	proxy := redistest.NewProxy(b, s.Addr())
	proxy.SetDelay(500*time.Microsecond, 500*time.Microsecond)
	ctx := context.Background()
	for _, idle := range []int{memcache.DefaultMaxIdleConns, DefaultMaxIdleConns} {
		l := newLayerT(b, Options{Addrs: []string{proxy.Addr()}, MaxIdleConns: idle, Timeout: roomyTimeout})
		if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("v"), Codec: "raw"}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("max_idle_conns=%d/rtt=1ms/goroutines=8xGOMAXPROCS", idle), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			before := totalConnections(b, s)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if e, err := l.Get(ctx, "k"); err != nil || e == nil {
						b.Error(e, err)
						return
					}
				}
			})
			b.StopTimer()
			// The stats command itself is one connection.
			b.ReportMetric(float64(totalConnections(b, s)-before-1)/float64(b.N), "dials/op")
		})
	}
}

func totalConnections(b *testing.B, s *memcachedtest.Server) int {
	n, err := strconv.Atoi(s.Stats(b)["total_connections"])
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func sizeName(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KB"
	}
	return strconv.Itoa(n) + "B"
}
