package layercache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// redisStack is a cache of a memory L1 over a Redis L2 reached through
// client.
func redisStack(t *testing.T, client goredis.UniversalClient, ro redis.Options, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	ro.Client = client
	if ro.Prefix == "" {
		ro.Prefix = "test:"
	}
	l2, err := redis.New(ro)
	if err != nil {
		t.Fatal(err)
	}
	return newCache(t, []driver.Layer{newMemory(t, memoryOpts), l2}, opts...)
}

func loadOnce(t *testing.T, v string) func(context.Context) (string, error) {
	calls := 0
	return func(context.Context) (string, error) {
		calls++
		if calls > 1 {
			t.Errorf("loader for %q ran %d times", v, calls)
		}
		return v, nil
	}
}

func TestRedis_L2HitBackfillsL1(t *testing.T) {
	srv := redistest.Start(t)
	a := redisStack(t, srv.Client(t), redis.Options{}, layercache.WithStrictWrites())
	b := redisStack(t, srv.Client(t), redis.Options{})
	ctx := context.Background()

	if v, err := layercache.Get(ctx, a, "k", loadOnce(t, "from a"), layercache.WithTTL(time.Minute)); v != "from a" || err != nil {
		t.Fatal(v, err)
	}
	// b has an empty L1: the first read is an L2 hit, the second an L1 hit.
	for range 2 {
		v, err := layercache.Get(ctx, b, "k", func(context.Context) (string, error) { return "", errors.New("b must not load") })
		if v != "from a" || err != nil {
			t.Fatal(v, err)
		}
	}
	s := b.Stats()
	if s.Layers[1].Hits != 1 || s.Layers[0].Hits != 1 || s.Loads != 0 {
		t.Fatalf("b: L1 hits %d, L2 hits %d, loads %d; want 1, 1, 0", s.Layers[0].Hits, s.Layers[1].Hits, s.Loads)
	}
	// The remaining lifetime came along: Redis's TTL and the entry agree.
	if pttl := srv.Client(t).PTTL(ctx, "test:k").Val(); pttl <= 0 || pttl > time.Minute {
		t.Fatalf("PTTL %v", pttl)
	}
}

func TestRedis_LargeValuesRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	for _, compress := range []int{0, 256} {
		for _, size := range []int{1 << 10, 1 << 20} {
			t.Run(fmt.Sprintf("size=%d/compress_above=%d", size, compress), func(t *testing.T) {
				a := redisStack(t, srv.Client(t), redis.Options{CompressAbove: compress}, layercache.WithStrictWrites())
				b := redisStack(t, srv.Client(t), redis.Options{CompressAbove: compress})
				ctx := context.Background()
				want := bytes.Repeat([]byte("0123456789abcdef"), size/16)
				key := fmt.Sprint("big", size, compress)
				must(t, layercache.Set(ctx, a, key, want))
				got, ok, err := layercache.Lookup[[]byte](ctx, b, key)
				if err != nil || !ok || !bytes.Equal(got, want) {
					t.Fatalf("ok=%v err=%v len=%d", ok, err, len(got))
				}
				stored := srv.Client(t).StrLen(ctx, "test:"+key).Val()
				if compress > 0 && stored > int64(size/4) {
					t.Fatalf("compressible value stored in %d bytes", stored)
				}
			})
		}
	}
}

func TestRedis_CorruptValueIsMissAndCountedError(t *testing.T) {
	srv := redistest.Start(t)
	c := redisStack(t, srv.Client(t), redis.Options{})
	ctx := context.Background()
	for i, foreign := range []string{"hello", "LC\x01garbage", ""} {
		key := fmt.Sprint("foreign", i)
		srv.Do(t, "SET", "test:"+key, foreign)
		if v, err := layercache.Get(ctx, c, key, loadOnce(t, "loaded")); v != "loaded" || err != nil {
			t.Fatalf("%q: %q, %v", foreign, v, err)
		}
		if got := c.Stats().Layers[1].Errors; got != uint64(i+1) {
			t.Fatalf("after %d foreign values, %d errors counted", i+1, got)
		}
	}
	if s := c.Stats().Layers[1]; s.Breaker != layercache.BreakerClosed {
		t.Fatal("corrupt values opened the breaker: the server is healthy")
	}
}

// outage runs the degradation scenario against a server that goes away by
// stop and comes back by start.
func outage(t *testing.T, stop, start func(*redistest.Server)) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	client := redistest.ClientFor(t, proxy.Addr(), "")
	client.Options().MaxRetries = -1
	const retryAfter = 200 * time.Millisecond
	c := redisStack(t, client, redis.Options{Timeout: 150 * time.Millisecond},
		layercache.WithDegradation(layercache.Degradation{FailureThreshold: 2, RetryAfter: retryAfter}))
	ctx := context.Background()
	if v, err := layercache.Get(ctx, c, "warm", loadOnce(t, "w")); v != "w" || err != nil {
		t.Fatal(v, err)
	}

	stop(srv)
	// Warm keys are served from L1 as if nothing happened.
	for range 50 {
		if v, err := layercache.Get(ctx, c, "warm", loadOnce(t, "never")); v != "w" || err != nil {
			t.Fatalf("warm hit during outage: %q, %v", v, err)
		}
	}
	// Cold misses get the loader's value; their failures open the breaker.
	for i := 0; c.Stats().Layers[1].Breaker != layercache.BreakerOpen; i++ {
		if i == 10 {
			t.Fatalf("breaker still %v after 10 cold misses", c.Stats().Layers[1].Breaker)
		}
		key := fmt.Sprint("cold", i)
		if v, err := layercache.Get(ctx, c, key, loadOnce(t, key)); v != key || err != nil {
			t.Fatalf("cold miss during outage: %q, %v", v, err)
		}
	}
	_ = c.Stats() // breaker open: from here on Redis is not touched at all
	proxy.Reset()
	for i := range 20 {
		key := fmt.Sprint("skip", i)
		if v, err := layercache.Get(ctx, c, key, loadOnce(t, key)); v != key || err != nil {
			t.Fatalf("cold miss with open breaker: %q, %v", v, err)
		}
	}
	if n, w := proxy.Accepted(), proxy.UpstreamWrites(); n != 0 || w != 0 {
		t.Fatalf("with the breaker open, %d connections and %d writes reached Redis", n, w)
	}

	start(srv)
	// After RetryAfter a probe goes through, the breaker closes and L2 is used again.
	i := 0
	eventually(t, "the breaker to close", func() bool {
		i++
		key := fmt.Sprint("back", i)
		_, _ = layercache.Get(ctx, c, key, func(context.Context) (string, error) { return key, nil })
		return c.Stats().Layers[1].Breaker == layercache.BreakerClosed
	})
	must(t, layercache.Set(ctx, c, "after", "x"))
	if got := srv.Client(t).Exists(ctx, "test:after").Val(); got != 1 {
		t.Fatal("L2 not written after recovery")
	}
}

func TestRedis_PausedServerDegradesAndRecovers(t *testing.T) {
	outage(t, (*redistest.Server).Pause, (*redistest.Server).Resume)
}

func TestRedis_KilledServerDegradesAndRecovers(t *testing.T) {
	outage(t, (*redistest.Server).Kill, (*redistest.Server).Restart)
}

func TestRedis_SlowRedisColdMissCostsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	client := redistest.ClientFor(t, proxy.Addr(), "")
	c := redisStack(t, client, redis.Options{Timeout: 2 * time.Second})
	ctx := context.Background()
	// Warm the connection pool (handshakes cost round trips of their own).
	must(t, client.Ping(ctx).Err())
	proxy.SetDelay(100*time.Millisecond, 0)
	proxy.Reset()

	var duringLoad int64
	v, err := layercache.Get(ctx, c, "cold", func(context.Context) (string, error) {
		duringLoad = proxy.UpstreamWrites()
		return "v", nil
	})
	if v != "v" || err != nil {
		t.Fatal(v, err)
	}
	if duringLoad != 1 {
		t.Fatalf("%d round trips to Redis before the loader ran, want 1 (the GET)", duringLoad)
	}
	must(t, c.Close()) // drains the background write
	if total := proxy.UpstreamWrites(); total != 2 {
		t.Fatalf("%d round trips in all, want 2 (GET, then the background SET)", total)
	}
}

// An older value that one instance writes to Redis after another instance
// changed the key must not survive, even when the change is heard only
// after the older write landed.
func TestBus_LateInvalidationUndoesOlderWrite(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()

	// A talks to Redis directly.
	clientA := srv.Client(t)
	busA, err := redis.NewBus(redis.BusOptions{Client: clientA, Namespace: "late"})
	if err != nil {
		t.Fatal(err)
	}
	a := redisStack(t, clientA, redis.Options{}, layercache.WithBus(busA), layercache.WithNamespace("late"))

	// B's writes and B's bus each go through a proxy, so that B's write
	// lands after A's Set and A's message reaches B after that.
	writes := redistest.NewProxy(t, srv.Addr())
	clientB := redistest.ClientFor(t, writes.Addr(), "")
	messages := redistest.NewProxy(t, srv.Addr())
	busB, err := redis.NewBus(redis.BusOptions{Client: redistest.ClientFor(t, messages.Addr(), ""), Namespace: "late"})
	if err != nil {
		t.Fatal(err)
	}
	b := redisStack(t, clientB, redis.Options{Timeout: 5 * time.Second}, layercache.WithBus(busB), layercache.WithNamespace("late"))
	must(t, clientB.Ping(ctx).Err())

	writes.SetDelay(300*time.Millisecond, 0)   // B's background SET lands late
	messages.SetDelay(0, 900*time.Millisecond) // and A's message reaches B later still
	if v, err := layercache.Get(ctx, b, "k", func(context.Context) (string, error) { return "old", nil }); v != "old" || err != nil {
		t.Fatal(v, err)
	}
	must(t, layercache.Set(ctx, a, "k", "new"))

	raw := func() string { return clientA.Get(ctx, "test:k").Val() }
	// The race happens: B's older value overwrites A's newer one...
	eventually(t, "B's late write to land", func() bool { return strings.Contains(raw(), "old") })
	// ...and once B hears of A's Set, it takes its value back out.
	eventually(t, "B to hear of A's Set", func() bool { return b.Stats().BusReceived == 1 })
	eventually(t, "B's older value to be gone from Redis", func() bool { return !strings.Contains(raw(), "old") })
}

// Messages the bus drops on receipt (malformed here) are bus errors in the
// cache's own Stats, not only in the bus's.
func TestStats_BusErrorsCountDroppedMessages(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	newInstance := func() (*layercache.Cache, *redis.Bus) {
		client := srv.Client(t)
		bus, err := redis.NewBus(redis.BusOptions{Client: client, Namespace: "drops"})
		must(t, err)
		return redisStack(t, client, redis.Options{}, layercache.WithBus(bus), layercache.WithNamespace("drops")), bus
	}
	a, busA := newInstance()
	b, _ := newInstance()
	for _, junk := range []string{"", "hello", "\x09\x01"} {
		srv.Do(t, "PUBLISH", busA.Channel(), junk)
	}
	must(t, layercache.Set(ctx, b, "k", "v")) // after the junk, on the same channel
	eventually(t, "a to hear b's Set", func() bool { return a.Stats().BusReceived == 1 })
	if got := a.Stats().BusErrors; got != 3 {
		t.Errorf("BusErrors = %d, want the 3 malformed messages", got)
	}
	a.ResetStats()
	if got := a.Stats().BusErrors; got != 0 {
		t.Errorf("BusErrors after ResetStats = %d, want 0", got)
	}
}
