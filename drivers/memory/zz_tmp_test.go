package memory

import (
	"context"
	"testing"
	"time"
)

func BenchmarkTmpGetDoubleCheck(b *testing.B) {
	m, _ := New(Options{TTL: time.Hour, MaxSize: 10 * benchKeys})
	b.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	keys := benchKeyNames()
	for i, k := range keys {
		_ = m.Set(ctx, k, benchEntry(i))
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e, _ := m.cache.GetIfPresent(keys[i&(benchKeys-1)])
			if e == nil || e.Expired(time.Now().UnixNano()) {
				b.Fatal("miss")
			}
			i++
		}
	})
}
