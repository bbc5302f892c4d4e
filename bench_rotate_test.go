package layercache_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// BenchmarkInvalidate100k empties a group of 100,000 keys in Redis two
// ways, in one run: rotating the namespace they live in (one INCR, and the
// old entries expire on their own) and invalidating a tag they all carry
// (the tag's index read and its keys unlinked in pages). It reports each
// one's Redis commands next to its time. Run it with -benchtime=1x: each
// iteration writes the 100,000 keys again.
func BenchmarkInvalidate100k(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	raw := srv.Client(b)
	l2, err := redis.New(redis.Options{Client: srv.Client(b), Prefix: "bench:", Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	c, err := layercache.New([]driver.Layer{l2})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 100_000
	items := make(map[string]string, n)
	for i := range n {
		items[fmt.Sprintf("item:%d", i)] = "v"
	}
	commands := func() int64 {
		var total int64
		for _, line := range strings.Split(raw.Info(ctx, "commandstats").Val(), "\n") {
			if _, rest, ok := strings.Cut(line, ":calls="); ok {
				var calls int64
				fmt.Sscanf(rest, "%d", &calls)
				total += calls
			}
		}
		return total
	}
	run := func(b *testing.B, invalidate func(view *layercache.Cache) error) {
		var cmds int64
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			must(b, raw.FlushAll(ctx).Err())
			view := c.Namespace(fmt.Sprintf("group%d", i))
			for batch := range chunks(items, 5_000) {
				must(b, layercache.SetMany(ctx, view, batch, layercache.WithTTL(time.Hour), layercache.WithTags("group")))
			}
			before := commands()
			b.StartTimer()
			must(b, invalidate(view))
			b.StopTimer()
			cmds += commands() - before - 1 // less the INFO that counted
			if got := lookupString(b, view, "item:1"); got != "<miss>" {
				b.Fatalf("item:1 = %s after the invalidation", got)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(cmds)/float64(b.N), "redis-cmds/op")
	}
	b.Run("rotate", func(b *testing.B) { run(b, func(v *layercache.Cache) error { return v.Rotate(ctx) }) })
	b.Run("tag", func(b *testing.B) { run(b, func(v *layercache.Cache) error { return v.InvalidateTags(ctx, "group") }) })
}

// chunks splits items into maps of at most size entries.
func chunks(items map[string]string, size int) func(func(map[string]string) bool) {
	return func(yield func(map[string]string) bool) {
		chunk := make(map[string]string, size)
		for k, v := range items {
			chunk[k] = v
			if len(chunk) == size {
				if !yield(chunk) {
					return
				}
				chunk = make(map[string]string, size)
			}
		}
		if len(chunk) > 0 {
			yield(chunk)
		}
	}
}
