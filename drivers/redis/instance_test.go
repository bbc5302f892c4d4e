package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/internal/redistest"
)

// These tests run the bus, the coordinator and the tag index the way a
// service does: several caches (instances), each with its own memory L1
// and its own connection, over one Redis.

// instance is one cache of a service.
type instance struct {
	cache  *layercache.Cache
	mem    *memory.Layer
	l2     *Layer
	bus    *Bus
	co     *Coordinator // nil without coordination
	client *goredis.Client
}

type instanceOptions struct {
	ns          string
	coordinated bool
	co          CoordinatorOptions // Client and Namespace are set by newInstance
	client      *goredis.Client    // default: a new one, closed in Cleanup
}

func newInstance(t testing.TB, s *redistest.Server, o instanceOptions) *instance {
	t.Helper()
	if o.ns == "" {
		o.ns = "app"
	}
	in := &instance{client: o.client}
	if in.client == nil {
		in.client = newClient(t, s)
	}
	var err error
	if in.mem, err = memory.New(memory.Options{}); err != nil {
		t.Fatal(err)
	}
	if in.l2, err = New(Options{Client: in.client, Prefix: o.ns + ":"}); err != nil {
		t.Fatal(err)
	}
	if in.bus, err = NewBus(BusOptions{Client: in.client, Namespace: o.ns, Logger: quietLogger}); err != nil {
		t.Fatal(err)
	}
	opts := []layercache.Option{layercache.WithNamespace(o.ns), layercache.WithBus(in.bus), layercache.WithLogger(quietLogger)}
	if o.coordinated {
		co := o.co
		co.Client, co.Namespace = in.client, o.ns
		if co.Logger == nil {
			co.Logger = quietLogger
		}
		if in.co, err = NewCoordinator(co); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, layercache.WithCoordinator(in.co))
	}
	in.cache, err = layercache.New([]driver.Layer{in.mem, in.l2}, opts...)
	if err != nil {
		t.Fatalf("layercache.New: %v", err)
	}
	t.Cleanup(func() { _ = in.cache.Close() })
	return in
}

// stored waits until the instance's background writes have put keys in
// Redis. The tests wait for it before another instance writes the same
// key: a background write already under way when the other instance's
// message arrives can still land after that instance's write.
func (in *instance) stored(t testing.TB, keys ...string) {
	t.Helper()
	for _, k := range keys {
		waitFor(t, "write-back of "+k, func() bool { e, err := in.l2.Get(context.Background(), k); return err == nil && e != nil })
	}
}

// indexed waits until keys are in tag's index: a write that has landed
// but not yet been indexed may survive an invalidation of the tag.
func (in *instance) indexed(t testing.TB, tag string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		waitFor(t, "index entry of "+k, func() bool {
			return in.client.ZScore(context.Background(), in.l2.tagKey(tag), k).Err() == nil
		})
	}
}

// received waits until the instance's bus has handed over n messages.
func (in *instance) received(t testing.TB, n uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d bus messages", n), func() bool { return in.bus.Stats().Received >= n })
}

func constLoader(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

func failLoader(t testing.TB) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		t.Error("loader ran, want a cached value")
		return "", errors.New("unexpected load")
	}
}

func get(t testing.TB, in *instance, key string, loader func(context.Context) (string, error), opts ...layercache.EntryOption) string {
	t.Helper()
	v, err := layercache.Get(context.Background(), in.cache, key, loader, append([]layercache.EntryOption{layercache.WithTTL(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func TestInstances_WritesReachTheOtherInstancesL1(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newInstance(t, s, instanceOptions{})
	b := newInstance(t, s, instanceOptions{})
	ctx := context.Background()

	t.Run("Set", func(t *testing.T) {
		if v := get(t, b, "k", constLoader("v1")); v != "v1" {
			t.Fatalf("b got %q", v)
		}
		b.stored(t, "k")
		n := b.bus.Stats().Received
		if err := layercache.Set(ctx, a.cache, "k", "v2", layercache.WithTTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		b.received(t, n+1)
		if v := get(t, b, "k", failLoader(t)); v != "v2" {
			t.Fatalf("b read %q after a's Set, want v2", v)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if v := get(t, b, "d", constLoader("old")); v != "old" {
			t.Fatalf("b got %q", v)
		}
		b.stored(t, "d")
		n := b.bus.Stats().Received
		if err := a.cache.Delete(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		b.received(t, n+1)
		if v := get(t, b, "d", constLoader("new")); v != "new" {
			t.Fatalf("b read %q after a's Delete, want a fresh load", v)
		}
	})

	t.Run("InvalidateTags", func(t *testing.T) {
		for _, k := range []string{"t1", "t2"} {
			get(t, b, k, constLoader("old"), layercache.WithTags("group"))
		}
		get(t, b, "untagged", constLoader("kept"))
		b.stored(t, "t1", "t2", "untagged")
		b.indexed(t, "group", "t1", "t2")
		n := b.bus.Stats().Received
		if err := a.cache.InvalidateTags(ctx, "group"); err != nil {
			t.Fatal(err)
		}
		b.received(t, n+1)
		for _, k := range []string{"t1", "t2"} {
			if v := get(t, b, k, constLoader("new")); v != "new" {
				t.Fatalf("b read %q for %s after the tag's invalidation, want a fresh load", v, k)
			}
		}
		if v := get(t, b, "untagged", failLoader(t)); v != "kept" {
			t.Fatalf("untagged entry = %q", v)
		}
		// And a finds b's new value in Redis.
		b.stored(t, "t1")
		if v := get(t, a, "t1", failLoader(t)); v != "new" {
			t.Fatalf("a read %q, want b's new value from Redis", v)
		}
	})
}

// stampede runs n concurrent Gets of key spread over the instances, all
// released at once, and returns their results.
func stampede(t testing.TB, ins []*instance, key string, n int, loader func(context.Context) (string, error)) []string {
	t.Helper()
	out := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out[i], errs[i] = layercache.Get(ctx, ins[i%len(ins)].cache, key, loader, layercache.WithTTL(time.Minute))
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("stampede on %q: %v", key, err)
	}
	return out
}

// countingLoader counts its calls and takes d, as a database query would.
func countingLoader(n *atomic.Int64, d time.Duration, v string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		n.Add(1)
		select {
		case <-time.After(d):
			return v, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func TestInstances_ConcurrentMissLoadsOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	for _, mode := range waitModes {
		t.Run(string(mode), func(t *testing.T) {
			o := instanceOptions{ns: string(mode), coordinated: true, co: CoordinatorOptions{Wait: mode}}
			ins := []*instance{newInstance(t, s, o), newInstance(t, s, o)}
			var loads atomic.Int64
			for _, v := range stampede(t, ins, "cold", 60, countingLoader(&loads, 100*time.Millisecond, "v")) {
				if v != "v" {
					t.Fatalf("a caller got %q", v)
				}
			}
			if n := loads.Load(); n != 1 {
				t.Fatalf("loader ran %d times for 60 concurrent misses on 2 instances, want 1", n)
			}
		})
	}
}

func TestInstances_ConcurrentMissAfterFlushAllLoadsOnce(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	o := instanceOptions{coordinated: true}
	ins := []*instance{newInstance(t, s, o), newInstance(t, s, o)}
	var loads atomic.Int64
	stampede(t, ins, "k", 20, countingLoader(&loads, 50*time.Millisecond, "before"))

	// Keys, locks, tag indexes and the scripts are gone; so are both L1s
	// once the deletion has gone round.
	s.Do(t, "FLUSHALL")
	s.Do(t, "SCRIPT", "FLUSH")
	n := ins[1].bus.Stats().Received
	if err := ins[0].cache.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	ins[1].received(t, n+1)

	loads.Store(0)
	for _, v := range stampede(t, ins, "k", 40, countingLoader(&loads, 100*time.Millisecond, "after")) {
		if v != "after" {
			t.Fatalf("a caller got %q after the flush", v)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times after FLUSHALL, want 1", n)
	}
}

// blockingLoader signals started when called and returns v when release
// is closed, or the context's error.
func blockingLoader(started chan<- struct{}, release <-chan struct{}, v string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		started <- struct{}{}
		select {
		case <-release:
			return v, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func TestInstances_HolderDiesAnotherInstanceLoadsAfterTheLease(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	lease := CoordinatorOptions{Lease: 400 * time.Millisecond}
	holderClient := goredis.NewClient(&goredis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	a := newInstance(t, s, instanceOptions{coordinated: true, co: lease, client: holderClient})
	b := newInstance(t, s, instanceOptions{coordinated: true, co: lease})

	started := make(chan struct{}, 1)
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	aDone := make(chan error, 1)
	go func() {
		_, err := layercache.Get(ctxA, a.cache, "k", blockingLoader(started, nil, "a"), layercache.WithTTL(time.Minute))
		aDone <- err
	}()
	<-started

	var bLoads atomic.Int64
	bDone := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		v, err := layercache.Get(ctx, b.cache, "k", countingLoader(&bLoads, 0, "b"), layercache.WithTTL(time.Minute))
		if err != nil {
			t.Errorf("b's Get: %v", err)
		}
		bDone <- v
	}()
	time.Sleep(100 * time.Millisecond)
	if bLoads.Load() != 0 {
		t.Fatal("b loaded while a held the lock")
	}

	// a dies: its connection goes first, so it can neither renew nor
	// release the lock; then its caller leaves.
	_ = holderClient.Close()
	cancelA()
	if err := <-aDone; !errors.Is(err, context.Canceled) {
		t.Errorf("a's Get = %v, want context.Canceled", err)
	}
	if v := <-bDone; v != "b" {
		t.Fatalf("b got %q, want its own load", v)
	}
	if n := bLoads.Load(); n != 1 {
		t.Fatalf("b's loader ran %d times, want 1", n)
	}
}

func TestInstances_LoadOutlastingItsLeaseKeepsTheLock(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	o := instanceOptions{coordinated: true, co: CoordinatorOptions{Lease: 300 * time.Millisecond, RenewEvery: 50 * time.Millisecond}}
	a, b := newInstance(t, s, o), newInstance(t, s, o)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	aDone := make(chan string, 1)
	go func() {
		v, err := layercache.Get(context.Background(), a.cache, "k", blockingLoader(started, release, "a"), layercache.WithTTL(time.Minute))
		if err != nil {
			t.Errorf("a's Get: %v", err)
		}
		aDone <- v
	}()
	<-started
	var bLoads atomic.Int64
	bDone := make(chan string, 1)
	go func() {
		v, err := layercache.Get(context.Background(), b.cache, "k", countingLoader(&bLoads, 0, "b"), layercache.WithTTL(time.Minute))
		if err != nil {
			t.Errorf("b's Get: %v", err)
		}
		bDone <- v
	}()
	time.Sleep(time.Second) // three leases
	close(release)
	if v := <-aDone; v != "a" {
		t.Fatalf("a got %q", v)
	}
	if v := <-bDone; v != "a" {
		t.Fatalf("b got %q, want a's value", v)
	}
	if n := bLoads.Load(); n != 0 {
		t.Fatalf("b loaded %d times while a's renewed lock was held", n)
	}
}

func TestInstances_RedisRestartMidLoad(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	o := instanceOptions{coordinated: true, co: CoordinatorOptions{Lease: time.Second, RenewEvery: 50 * time.Millisecond}}
	a, b := newInstance(t, s, o), newInstance(t, s, o)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		v, err := layercache.Get(context.Background(), a.cache, "k", blockingLoader(started, release, "a"), layercache.WithTTL(time.Minute))
		if err == nil && v != "a" {
			err = fmt.Errorf("got %q", v)
		}
		aDone <- err
	}()
	<-started
	resets := a.bus.Stats().Resets
	s.Restart() // the lock, the data and the script cache are gone
	waitFor(t, "the bus to subscribe again", func() bool { return a.bus.Stats().Resets > resets })
	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("a's Get across the restart: %v", err)
	}
	// The instances coordinate as before the restart.
	var loads atomic.Int64
	stampede(t, []*instance{a, b}, "after", 30, countingLoader(&loads, 100*time.Millisecond, "v"))
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times after the restart, want 1", n)
	}
}

func TestInstances_BusReconnectionDropsL1(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a, b := newInstance(t, s, instanceOptions{}), newInstance(t, s, instanceOptions{})
	ctx := context.Background()
	get(t, b, "k", constLoader("v1"))
	b.stored(t, "k")
	// A write b never hears of, as if its message was lost in a gap.
	wire, err := a.l2.Get(ctx, "k")
	if err != nil || wire == nil {
		t.Fatalf("L2 entry: %v, %v", wire, err)
	}
	if err := a.l2.Set(ctx, "k", &driver.Entry{Payload: []byte("v2"), Codec: wire.Codec, ExpiresAt: wire.ExpiresAt, StaleAt: wire.StaleAt}); err != nil {
		t.Fatal(err)
	}
	if v := get(t, b, "k", failLoader(t)); v != "v1" {
		t.Fatalf("b read %q; the test needs b's L1 to hold v1", v)
	}

	resets := b.bus.Stats().Resets
	s.Do(t, "CLIENT", "KILL", "TYPE", "pubsub")
	waitFor(t, "b's bus to subscribe again", func() bool { return b.bus.Stats().Resets > resets })
	if e, _ := b.mem.Get(ctx, "k"); e != nil {
		t.Fatal("b's L1 still holds an entry written before the gap")
	}
	if v := get(t, b, "k", failLoader(t)); v != "v2" {
		t.Fatalf("b read %q after reconnecting, want v2 from Redis", v)
	}
}

func TestInstances_NewFailsWithoutChannelRights(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := aclClient(t, s, "cacheonly", "resetchannels")
	l2 := newLayerT(t, Options{Client: c, Prefix: "p:"})
	bus, err := NewBus(BusOptions{Client: c, Namespace: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	cache, err := layercache.New([]driver.Layer{l2}, layercache.WithBus(bus))
	if err == nil {
		_ = cache.Close()
		t.Fatal("New with a bus that may not use its channel succeeded")
	}
	if !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "layercache:app:bus") {
		t.Fatalf("New = %v, want NOPERM naming the channel", err)
	}
}

func TestOpen_BusAndSingleflightShareTheLayersConnection(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "cache.yaml")
	yaml := fmt.Sprintf(`
namespace: svc
layers:
  - driver: memory
  - driver: redis
    url: %s
    prefix: "svc:"
bus: { driver: redis, timeout: 500ms }
singleflight: { driver: redis, lease: 2s, wait: poll, poll_max: 10ms }
`, s.URL())
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func() *layercache.Cache {
		c, err := layercache.Open(path, layercache.WithLogger(quietLogger))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a, b := open(), open()
	ctx := context.Background()
	if _, err := layercache.Get(ctx, b, "k", constLoader("v1"), layercache.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's write-back", func() bool { return s.Do(t, "EXISTS", "svc:k") == int64(1) })
	if err := layercache.Set(ctx, a, "k", "v2", layercache.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to hear of a's Set", func() bool { return b.Stats().BusReceived >= 1 })
	if v, _ := layercache.Get(ctx, b, "k", failLoader(t), layercache.WithTTL(time.Minute)); v != "v2" {
		t.Fatalf("b read %q, want v2", v)
	}
	// Two clients in all, one per cache: bus and coordinator use their
	// layer's. Each client holds a pub/sub connection (the bus).
	if got := clientCount(t, s, "pubsub"); got != 2 {
		t.Errorf("%d pub/sub connections for 2 caches, want 2", got)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitFor(t, "every connection to close", func() bool { return clientCount(t, s, "normal")+clientCount(t, s, "pubsub") <= 1 })
}

// clientCount counts the server's connections of a type (normal, pubsub).
func clientCount(t *testing.T, s *redistest.Server, typ string) int {
	t.Helper()
	list, _ := s.Do(t, "CLIENT", "LIST", "TYPE", typ).(string)
	return strings.Count(list, "\n")
}

// helperEnv makes the test binary a second instance of a service, run by
// TestHelperProcess in a process of its own.
const helperEnv = "LAYERCACHE_REDIS_TEST_HELPER"

// startHelper runs the test binary as a helper process in mode, with env,
// and returns its stdin and a reader of its stdout. The process is killed
// when the test ends.
func startHelper(t *testing.T, mode string, env ...string) (*exec.Cmd, io.Writer, *bufio.Scanner) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("helper stderr:\n%s", stderr.String())
		}
	})
	return cmd, in, bufio.NewScanner(out)
}

// expectLine reads lines from sc until one starts with prefix.
func expectLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("helper ended without printing %q (%v)", prefix, sc.Err())
	return ""
}

// redisCountingLoader counts loads in Redis, so processes can add up.
func redisCountingLoader(c *goredis.Client, counter string, d time.Duration, v string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if err := c.Incr(context.WithoutCancel(ctx), counter).Err(); err != nil {
			return "", err
		}
		select {
		case <-time.After(d):
			return v, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// TestHelperProcess is not a test: it is the second instance run by the
// tests below in a process of their own, and returns at once otherwise.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	lease, _ := time.ParseDuration(os.Getenv("HELPER_LEASE"))
	client := goredis.NewClient(&goredis.Options{Addr: os.Getenv("HELPER_ADDR"), ContextTimeoutEnabled: true})
	defer client.Close()
	in := newInstance(t, nil, instanceOptions{coordinated: true, client: client, co: CoordinatorOptions{Lease: lease}})
	stdin := bufio.NewScanner(os.Stdin)
	switch mode {
	case "stampede":
		n, _ := strconv.Atoi(os.Getenv("HELPER_N"))
		fmt.Println("ready")
		stdin.Scan()
		vals := stampede(t, []*instance{in}, "cold", n, redisCountingLoader(client, "loads", 200*time.Millisecond, "helper"))
		fmt.Println("done", strings.Join(vals, ","))
	case "hold":
		started := make(chan struct{}, 1)
		go func() {
			<-started
			fmt.Println("loading")
		}()
		// Never returns: the parent kills the process mid-load.
		_, _ = layercache.Get(context.Background(), in.cache, "k", blockingLoader(started, nil, "helper"), layercache.WithTTL(time.Minute))
	}
}

func TestProcesses_ConcurrentMissLoadsOnce(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	local := newInstance(t, s, instanceOptions{coordinated: true, client: client})
	_, stdin, stdout := startHelper(t, "stampede", "HELPER_ADDR="+s.Addr(), "HELPER_N=30")
	expectLine(t, stdout, "ready")
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	vals := stampede(t, []*instance{local}, "cold", 30, redisCountingLoader(client, "loads", 200*time.Millisecond, "parent"))
	done := expectLine(t, stdout, "done ")
	if n := s.Do(t, "GET", "loads"); n != "1" {
		t.Fatalf("loader ran %v times across 2 processes, want 1", n)
	}
	// Everyone got the one loaded value, whichever process loaded it.
	want := vals[0]
	for _, v := range append(vals, strings.Split(strings.TrimPrefix(done, "done "), ",")...) {
		if v != want {
			t.Fatalf("callers got %q and %q", want, v)
		}
	}
}

func TestProcesses_KilledHolderIsTakenOverAfterTheLease(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	local := newInstance(t, s, instanceOptions{coordinated: true})
	cmd, _, stdout := startHelper(t, "hold", "HELPER_ADDR="+s.Addr(), "HELPER_LEASE=500ms")
	expectLine(t, stdout, "loading")

	var loads atomic.Int64
	done := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		v, err := layercache.Get(ctx, local.cache, "k", countingLoader(&loads, 0, "local"), layercache.WithTTL(time.Minute))
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		done <- v
	}()
	time.Sleep(100 * time.Millisecond)
	if loads.Load() != 0 {
		t.Fatal("loaded while the helper held the lock")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if v := <-done; v != "local" {
		t.Fatalf("Get = %q after the holder died, want a load of our own", v)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loaded %d times, want 1", n)
	}
}
