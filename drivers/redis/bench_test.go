package redis

import (
	"context"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/redistest"
)

// The layer's Get is measured against go-redis's own GET of the very same
// stored bytes, on a server of its own with the same client options, so the
// ratio of the two is the layer's cost: the envelope (CRC-32C and header)
// and the entry.

var benchSizes = []struct {
	name string
	n    int
}{{"size=1KB", 1 << 10}, {"size=1MB", 1 << 20}}

// benchEntry is an entry as the cache writes it: a codec, an expiry, a tag.
func benchEntry(n int) *driver.Entry {
	p := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(p)
	return &driver.Entry{Payload: p, Codec: "msgpack", Tags: []string{"users"}}
}

func benchLayer(b *testing.B) (*Layer, *goredis.Client) {
	s := redistest.Start(b)
	c := newClient(b, s)
	return newLayerT(b, Options{Client: c, Prefix: "bench:"}), c
}

func BenchmarkGoRedisGet(b *testing.B) {
	l, c := benchLayer(b)
	ctx := context.Background()
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			// The baseline reads what the layer would store for the entry.
			if err := l.Set(ctx, "k", benchEntry(sz.n)); err != nil {
				b.Fatal(err)
			}
			// A key built at run time, as a caller's keys are: a constant
			// would spare the baseline the boxing of the key.
			key := l.prefix + "k"
			want, err := c.StrLen(ctx, key).Result()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				v, err := c.Get(ctx, key).Bytes()
				if err != nil || int64(len(v)) != want {
					b.Fatalf("GET = %d bytes, %v", len(v), err)
				}
			}
		})
	}
}

func BenchmarkRedisLayerGet(b *testing.B) {
	l, _ := benchLayer(b)
	ctx := context.Background()
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			if err := l.Set(ctx, "k", benchEntry(sz.n)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				e, err := l.Get(ctx, "k")
				if err != nil || e == nil || len(e.Payload) != sz.n {
					b.Fatalf("Get = %v, %v", e, err)
				}
			}
		})
	}
}

// BenchmarkRedisLayerGetVsGoRedis alternates a raw GET and a layer Get of
// the same bytes on one client, timing each, and reports their ratio. The
// two separate benchmarks above run minutes apart on a shared machine; here
// both see the same load, so the ratio holds still where their ns/op do not.
func BenchmarkRedisLayerGetVsGoRedis(b *testing.B) {
	l, c := benchLayer(b)
	ctx := context.Background()
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			if err := l.Set(ctx, "k", benchEntry(sz.n)); err != nil {
				b.Fatal(err)
			}
			key := l.prefix + "k"
			var raw, layer time.Duration
			b.ReportAllocs()
			b.SetBytes(2 * int64(sz.n))
			i := 0
			for b.Loop() {
				// Alternate which goes first, so neither always finds the
				// other's garbage or warm caches.
				for j := range 2 {
					start := time.Now()
					if (i+j)%2 == 0 {
						if _, err := c.Get(ctx, key).Bytes(); err != nil {
							b.Fatal(err)
						}
						raw += time.Since(start)
					} else {
						if e, err := l.Get(ctx, "k"); err != nil || e == nil {
							b.Fatalf("Get = %v, %v", e, err)
						}
						layer += time.Since(start)
					}
				}
				i++
			}
			b.ReportMetric(float64(raw.Nanoseconds())/float64(i), "goredis-ns/get")
			b.ReportMetric(float64(layer.Nanoseconds())/float64(i), "layer-ns/get")
			b.ReportMetric(float64(layer)/float64(raw), "ratio")
		})
	}
}

func BenchmarkGoRedisGetParallel(b *testing.B) {
	l, c := benchLayer(b)
	ctx := context.Background()
	b.Run("size=1KB", func(b *testing.B) {
		if err := l.Set(ctx, "k", benchEntry(1<<10)); err != nil {
			b.Fatal(err)
		}
		key := l.prefix + "k"
		b.ReportAllocs()
		b.SetBytes(1 << 10)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Get(ctx, key).Bytes(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkRedisLayerGetParallel(b *testing.B) {
	l, _ := benchLayer(b)
	ctx := context.Background()
	b.Run("size=1KB", func(b *testing.B) {
		if err := l.Set(ctx, "k", benchEntry(1<<10)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(1 << 10)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if e, err := l.Get(ctx, "k"); err != nil || e == nil {
					b.Errorf("Get = %v, %v", e, err)
					return
				}
			}
		})
	})
}

// BenchmarkEnvelopeUnmarshal is the layer's work on a reply, without the
// network; BenchmarkCRC32C is the checksum alone, its largest part at 1 MB.
func BenchmarkEnvelopeUnmarshal(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			rec, err := envelope.Marshal(benchEntry(sz.n), envelope.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				if _, err := envelope.Unmarshal(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCRC32C(b *testing.B) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			p := benchEntry(sz.n).Payload
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				crc32.Checksum(p, tab)
			}
		})
	}
}
