package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/internal/redistest"
)

// BenchmarkInvalidateManyKeys removes (or soft-expires) the same 100,000
// tagged keys in each of the ways the layer offers, beside the naive
// baseline of KEYS and one UNLINK. It reports the Redis commands each way
// runs (cmds/op) and the longest of them as Redis's slow log times it
// (max-cmd-ms): the baseline is one short round trip but blocks Redis for
// the whole of it, the layer's ways take more commands that each stay
// short. Run with -benchtime=1x; every iteration writes the keys anew.
func BenchmarkInvalidateManyKeys(b *testing.B) {
	const n = 100000
	s := redistest.Start(b)
	client := newClient(b, s)
	nodes := []*goredis.Client{client}
	ctx := context.Background()
	l := newLayerT(b, Options{Client: client, Prefix: "app:", Timeout: 10 * time.Second})
	var keys []string
	ways := []struct {
		name string
		run  func() error
	}{
		{"how=keys+unlink(baseline)", func() error {
			found, err := client.Keys(ctx, "app:big:*").Result()
			if err != nil {
				return err
			}
			return client.Unlink(ctx, found...).Err()
		}},
		{"how=prefix", func() error { return l.InvalidatePrefix(ctx, "big:") }},
		{"how=tag", func() error { return l.InvalidateTags(ctx, "t") }},
		{"how=delete-known-keys", func() error { return l.Delete(ctx, keys...) }},
		{"how=expire-prefix", func() error { return l.ExpirePrefix(ctx, "big:") }},
		{"how=expire-tag", func() error { return l.ExpireTags(ctx, "t") }},
	}
	for _, w := range ways {
		b.Run("keys=100000/"+w.name, func(b *testing.B) {
			var cmds int64
			var longest time.Duration
			for range b.N {
				b.StopTimer()
				if err := client.FlushAll(ctx).Err(); err != nil {
					b.Fatal(err)
				}
				keys = writeNumbered(b, l, "big:", n, 1)
				logEveryCommand(b, nodes)
				before := commandStats(b, nodes)
				b.StartTimer()
				if err := w.run(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_, total := statsDelta(before, commandStats(b, nodes))
				cmds += total
				logs, err := client.SlowLogGet(ctx, -1).Result()
				if err != nil {
					b.Fatal(err)
				}
				for _, lg := range logs {
					if lg.Args[0] != "info" && lg.Args[0] != "slowlog" {
						longest = max(longest, lg.Duration)
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cmds)/float64(b.N), "cmds/op")
			b.ReportMetric(float64(longest)/float64(time.Millisecond), "max-cmd-ms")
		})
	}
}
