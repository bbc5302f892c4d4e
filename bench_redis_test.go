package layercache_test

import (
	"bytes"

	"context"
	"fmt"
	goredis "github.com/redis/go-redis/v9"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// BenchmarkRedisHit reads a value through a cache whose only layer is
// Redis, next to BenchmarkRedisHit/raw-go-redis, a plain GET of the same
// bytes on an equal client in the same run: the ratio is the cost of the
// cache (envelope, checksum, stats, breaker, timeout) over the round trip.
// Both clients are set up as the Redis driver sets up the clients it builds
// from configuration: socket timeouts equal to the layer's timeout and no
// retries, so the layer needs no per-operation timer.
func BenchmarkRedisHit(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	newClient := func() *goredis.Client {
		c := goredis.NewClient(&goredis.Options{
			Addr: srv.Addr(), ContextTimeoutEnabled: true,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolTimeout: time.Second,
			MaxRetries: -1, DialerRetries: 1,
		})
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	for _, size := range []int{1 << 10, 1 << 20} {
		name := fmt.Sprintf("size=%dKB", size>>10)
		value := bytes.Repeat([]byte{'x', 0x01, 0xfe, 'y'}, size/4)

		rawClient := newClient()
		if err := rawClient.Set(ctx, "raw", value, 0).Err(); err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/raw-go-redis", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				v, err := rawClient.Get(ctx, "raw").Bytes()
				if err != nil || len(v) != size {
					b.Fatal(err)
				}
			}
		})

		l2, err := redis.New(redis.Options{Client: newClient(), Prefix: "bench:", Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		c, err := layercache.New([]driver.Layer{l2})
		if err != nil {
			b.Fatal(err)
		}
		if err := layercache.Set(ctx, c, "k", value, layercache.WithTTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/layercache", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				v, err := layercache.Get(ctx, c, "k", func(context.Context) ([]byte, error) {
					return nil, fmt.Errorf("miss")
				})
				if err != nil || len(v) != size {
					b.Fatal(err)
				}
			}
		})
		// The two interleaved, so that drift in the machine's load hits
		// both alike: the reported ratio is the claim.
		b.Run(name+"/interleaved", func(b *testing.B) {
			b.ReportAllocs()
			var raw, cached time.Duration
			for b.Loop() {
				t0 := time.Now()
				v, err := rawClient.Get(ctx, "raw").Bytes()
				t1 := time.Now()
				w, err2 := layercache.Get(ctx, c, "k", func(context.Context) ([]byte, error) {
					return nil, fmt.Errorf("miss")
				})
				t2 := time.Now()
				if err != nil || err2 != nil || len(v) != size || len(w) != size {
					b.Fatal(err, err2)
				}
				raw += t1.Sub(t0)
				cached += t2.Sub(t1)
			}
			b.ReportMetric(float64(cached)/float64(raw), "x-vs-raw")
		})
		_ = c.Close()
	}
}

// BenchmarkColdMissSlowRedis measures a miss through memory + Redis when
// Redis answers after a delay, next to the loader alone: a cold miss should
// cost one round trip plus the loader, since the write to Redis happens
// after Get returns.
func BenchmarkColdMissSlowRedis(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	loader := func(context.Context) (string, error) {
		time.Sleep(time.Millisecond) // a fast database
		return "value", nil
	}
	b.Run("baseline=loader-only", func(b *testing.B) {
		for b.Loop() {
			_, _ = loader(ctx)
		}
	})
	for _, delay := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) {
			proxy := redistest.NewProxy(b, srv.Addr())
			client := redistest.ClientFor(b, proxy.Addr(), "")
			l1 := newMemory(b, memoryOpts)
			l2, err := redis.New(redis.Options{Client: client, Prefix: "cold:", Timeout: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			c, err := layercache.New([]driver.Layer{l1, l2})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			_ = client.Ping(ctx)
			proxy.SetDelay(delay/2, delay/2)
			i := 0
			for b.Loop() {
				i++
				if _, err := layercache.Get(ctx, c, fmt.Sprint(delay, ":", i), loader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
