package redis

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/internal/redistest"
)

// BenchmarkStampede measures a cold key asked for by 75 goroutines at once,
// one round per iteration (ns/op is the time of a round), and reports how
// many times the loader ran per round. The loader takes 10ms, as a query
// would. Its baselines sit beside it: one instance (in-process
// single-flight only), and two instances without a coordinator, which load
// once each. With a coordinator, two instances must load once in all; the
// difference between notify and poll is how soon the waiting instance hears
// that the value is there.
//
//	go test -run '^$' -bench Stampede -benchtime 5x ./drivers/redis
func BenchmarkStampede(b *testing.B) {
	const (
		callers = 75
		loadFor = 10 * time.Millisecond
	)
	s := redistest.Start(b)
	for _, bc := range []struct {
		name      string
		instances int
		wait      WaitMode // "" without a coordinator
	}{
		{"layers=memory+redis/instances=1", 1, ""},
		{"layers=memory+redis/instances=2/coordinator=none", 2, ""},
		{"layers=memory+redis/instances=2/coordinator=notify", 2, WaitNotify},
		{"layers=memory+redis/instances=2/coordinator=poll", 2, WaitPoll},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ns := strconv.Itoa(int(time.Now().UnixNano()))
			o := instanceOptions{ns: ns, coordinated: bc.wait != "", co: CoordinatorOptions{Wait: bc.wait}}
			var ins []*instance
			for range bc.instances {
				ins = append(ins, newInstance(b, s, o))
			}
			var loads atomic.Int64
			loader := func(context.Context) (string, error) {
				loads.Add(1)
				time.Sleep(loadFor)
				return "v", nil
			}
			ctx := context.Background()
			round := 0
			b.ReportAllocs()
			for b.Loop() {
				key := "cold" + strconv.Itoa(round)
				round++
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if _, err := layercache.Get(ctx, ins[i%len(ins)].cache, key, loader, layercache.WithTTL(time.Minute)); err != nil {
							b.Error(err)
						}
					}()
				}
				close(start)
				wg.Wait()
			}
			b.ReportMetric(float64(loads.Load())/float64(round), "loads/round")
		})
	}
}
