package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/redistest"
)

// newClient returns a client for s made as the layer's documentation asks,
// with ContextTimeoutEnabled, closed in t.Cleanup.
func newClient(t testing.TB, s *redistest.Server) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newClusterClient(t testing.TB, c *redistest.Cluster) *goredis.ClusterClient {
	t.Helper()
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func newLayerT(t testing.TB, o Options) *Layer {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// testPrefix gives each subtest its own key space on a shared server, so
// that the suite's "fresh, empty layer" holds without a server per subtest.
func testPrefix(t *testing.T) string { return t.Name() + ":" }

func TestConformance_Standalone(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
		l, err := New(Options{Client: client, Prefix: testPrefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
		s.Do(t, "SET", testPrefix(t)+key, "hello")
	}})
}

// TestCluster runs everything that needs a Cluster on one, since a
// cluster takes seconds to form.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	client := newClusterClient(t, c)
	t.Run("Conformance", func(t *testing.T) {
		drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
			l, err := New(Options{Client: client, Prefix: testPrefix(t), CompressAbove: 512})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
			if err := client.Set(context.Background(), testPrefix(t)+key, "hello", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}})
	})

	t.Run("OpenLayerWithAddrs", func(t *testing.T) { testOpenLayerClusterAddrs(t, c) })

	t.Run("KeySlotMatchesServer", func(t *testing.T) {
		ctx := context.Background()
		keys := []string{"", "a", "user:42", "{user}:1", "x{}y", "{}{z}", "a{b", "a}b{c}", "ключ", strings.Repeat("k", 300)}
		for i := range 50 {
			keys = append(keys, "key-"+strconv.Itoa(i))
		}
		for _, k := range keys {
			want, err := client.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := keySlot(k); int64(got) != want {
				t.Errorf("keySlot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
			}
		}
	})

	t.Run("LargeBatchesSpanManySlots", func(t *testing.T) { testLargeBatches(t, client) })

	// go-redis can route multi-key commands by the command info the
	// server publishes; that router takes keys only as strings. (It also
	// refuses them in pipelines, so batches over several slots fail
	// with it.)
	t.Run("BatchInOneSlotWithDynamicRouting", func(t *testing.T) {
		dynamic := newClusterClient(t, c)
		dynamic.SetCommandInfoResolver(dynamic.NewDynamicResolver())
		ctx := context.Background()
		l := newLayerT(t, Options{Client: dynamic, Prefix: "dyn:"})
		keys := []string{"{u}:1", "{u}:2", "{u}:3"}
		for _, k := range keys[:2] {
			if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k), Codec: "raw"}); err != nil {
				t.Fatal(err)
			}
		}
		es, err := l.GetMany(ctx, keys)
		if err != nil || es[0] == nil || string(es[1].Payload) != "{u}:2" || es[2] != nil {
			t.Fatalf("GetMany = %v, %v", es, err)
		}
	})

	t.Run("TagsBusCoordinator", func(t *testing.T) { testClusterCrossInstance(t, client) })

	t.Run("CheckAccessAndSignedValues", func(t *testing.T) { testClusterTrust(t, client) })

	t.Run("ClearScansEveryMaster", func(t *testing.T) {
		ctx := context.Background()
		l := newLayerT(t, Options{Client: client, Prefix: "clear:"})
		for i := range 300 {
			k := "k" + strconv.Itoa(i)
			if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.Set(ctx, "other:k", "kept", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.Clear(ctx); err != nil {
			t.Fatalf("Clear: %v", err)
		}
		if n := countKeys(t, client, "clear:*"); n != 0 {
			t.Errorf("%d prefixed keys left after Clear", n)
		}
		if v, err := client.Get(ctx, "other:k").Result(); err != nil || v != "kept" {
			t.Errorf("unprefixed key after Clear = %q, %v; want it kept", v, err)
		}
	})
}

func TestGetMany_LargeBatches(t *testing.T) {
	testLargeBatches(t, newClient(t, redistest.Start(t)))
}

// testLargeBatches writes, reads and deletes more keys than one command
// carries; in a cluster they span many slots.
func testLargeBatches(t *testing.T, client goredis.UniversalClient) {
	ctx := context.Background()
	l := newLayerT(t, Options{Client: client, Prefix: "span:"})
	const n = 2500 // more keys than one MGET carries, over every node
	keys := make([]string, n)
	entries := make([]*driver.Entry, n)
	slots := map[uint16]bool{}
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		entries[i] = &driver.Entry{Payload: []byte(keys[i]), Codec: "raw"}
		slots[keySlot("span:"+keys[i])] = true
	}
	if len(slots) < 100 {
		t.Fatalf("only %d slots; the test needs keys spread over the cluster", len(slots))
	}
	if err := l.SetMany(ctx, keys, entries); err != nil {
		t.Fatalf("SetMany: %v", err)
	}
	// Ask in an order unlike the writes', with misses and a repeat.
	ask := append([]string{"absent"}, keys...)
	ask = append(ask, keys[7])
	got, err := l.GetMany(ctx, ask)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	for i, k := range ask {
		if k == "absent" {
			if got[i] != nil {
				t.Errorf("GetMany[%d] (absent) = %q", i, got[i].Payload)
			}
			continue
		}
		if got[i] == nil || string(got[i].Payload) != k {
			t.Fatalf("GetMany[%d] (%q) = %v", i, k, got[i])
		}
	}
	if err := l.Delete(ctx, keys...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	got, err = l.GetMany(ctx, keys)
	if err != nil {
		t.Fatalf("GetMany after Delete: %v", err)
	}
	for i, e := range got {
		if e != nil {
			t.Fatalf("key %q survived Delete", keys[i])
		}
	}
}

// countKeys counts the keys matching pattern on every master, node by node.
func countKeys(t *testing.T, cc *goredis.ClusterClient, pattern string) int {
	t.Helper()
	ctx := context.Background()
	counts := make(chan int, 16)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		keys, err := c.Keys(ctx, pattern).Result()
		counts <- len(keys)
		return err
	})
	close(counts)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for c := range counts {
		n += c
	}
	return n
}

func TestSet_ValuesRoundTripWithAndWithoutCompression(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	ctx := context.Background()

	rng := rand.NewChaCha8([32]byte{7})
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b)
		return b
	}
	text := func(n int) []byte { return bytes.Repeat([]byte(`{"name":"Ada","city":"London"},`), n/30+1)[:n] }

	for _, compress := range []int{0, 512} {
		l := newLayerT(t, Options{Client: client, Prefix: fmt.Sprintf("c%d:", compress), CompressAbove: compress})
		for _, c := range []struct {
			name string
			data []byte
		}{
			{"1KB-random", random(1 << 10)},
			{"1KB-text", text(1 << 10)},
			{"1MB-random", random(1 << 20)},
			{"1MB-text", text(1 << 20)},
		} {
			t.Run(fmt.Sprintf("compress_above=%d/%s", compress, c.name), func(t *testing.T) {
				e := &driver.Entry{Payload: bytes.Clone(c.data), Codec: "raw", Tags: []string{"t"}}
				if err := l.Set(ctx, c.name, e); err != nil {
					t.Fatalf("Set: %v", err)
				}
				got, err := l.Get(ctx, c.name)
				if err != nil || got == nil {
					t.Fatalf("Get = %v, %v", got, err)
				}
				if !bytes.Equal(got.Payload, c.data) || got.Codec != "raw" || len(got.Tags) != 1 {
					t.Fatalf("Get returned a different entry (payload %d bytes, codec %q, tags %q)", len(got.Payload), got.Codec, got.Tags)
				}
				stored := s.Do(t, "STRLEN", l.prefix+c.name).(int64)
				switch {
				case compress > 0 && strings.HasSuffix(c.name, "text"):
					if stored > int64(len(c.data))/4 {
						t.Errorf("compressible %d bytes stored as %d", len(c.data), stored)
					}
				case stored < int64(len(c.data)):
					t.Errorf("%d bytes stored as only %d without compressing", len(c.data), stored)
				}
			})
		}
	}
}

func TestGet_ForeignValueIsCorruptError(t *testing.T) {
	s := redistest.Start(t)
	l := newLayerT(t, Options{Client: newClient(t, s), Prefix: "p:"})
	ctx := context.Background()

	good, err := envelope.Marshal(&driver.Entry{Payload: []byte("v")}, envelope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-5] ^= 1
	for name, raw := range map[string]string{
		"foreign":   "hello",
		"empty":     "",
		"truncated": string(good[:len(good)-1]),
		"flipped":   string(flipped),
	} {
		s.Do(t, "SET", "p:"+name, raw)
		e, err := l.Get(ctx, name)
		if e != nil || !errors.Is(err, envelope.ErrCorrupt) {
			t.Errorf("Get of a %s value = %v, %v; want an error wrapping envelope.ErrCorrupt", name, e, err)
		}
		es, err := l.GetMany(ctx, []string{"absent", name})
		if es != nil || !errors.Is(err, envelope.ErrCorrupt) {
			t.Errorf("GetMany with a %s value = %v, %v; want an error wrapping envelope.ErrCorrupt", name, es, err)
		}
	}
}

func TestSet_OversizedValueIsRefusedAndNotWritten(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	ctx := context.Background()
	const max = 64 << 10

	for _, compress := range []int{0, 1024} {
		l := newLayerT(t, Options{Client: client, Prefix: "p" + strconv.Itoa(compress) + ":", MaxValueSize: max, CompressAbove: compress})
		big := make([]byte, max+1)
		_, _ = rand.NewChaCha8([32]byte{3}).Read(big) // incompressible
		fits := make([]byte, max/2)

		if err := l.Set(ctx, "new", &driver.Entry{Payload: big}); !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("compress_above=%d: Set of %d bytes = %v, want ErrValueTooLarge", compress, len(big), err)
		}
		if err := l.Set(ctx, "old", &driver.Entry{Payload: fits}); err != nil {
			t.Fatal(err)
		}
		if err := l.Set(ctx, "old", &driver.Entry{Payload: big}); !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("compress_above=%d: Set over an older value = %v, want ErrValueTooLarge", compress, err)
		}
		err := l.SetMany(ctx, []string{"many-big", "many-ok"}, []*driver.Entry{{Payload: big}, {Payload: fits}})
		if !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("compress_above=%d: SetMany with an oversized entry = %v, want ErrValueTooLarge", compress, err)
		}
		for _, k := range []string{"new", "old", "many-big"} {
			if n := s.Do(t, "EXISTS", l.prefix+k).(int64); n != 0 {
				t.Errorf("compress_above=%d: refused key %q is in Redis", compress, k)
			}
		}
		if e, err := l.Get(ctx, "many-ok"); err != nil || e == nil {
			t.Errorf("compress_above=%d: the entry next to the refused one = %v, %v; want it written", compress, e, err)
		}
	}

	// Compression that brings a record under the limit lets it through.
	l := newLayerT(t, Options{Client: client, Prefix: "z:", MaxValueSize: max, CompressAbove: 1024})
	if err := l.Set(ctx, "k", &driver.Entry{Payload: make([]byte, 4*max)}); err != nil {
		t.Errorf("Set of a compressible value that fits once compressed: %v", err)
	}
}

func TestGet_PausedServerFailsAtContextDeadline(t *testing.T) {
	s := redistest.Start(t)
	l := newLayerT(t, Options{Client: newClient(t, s), Prefix: "p:"})
	want := &driver.Entry{Payload: []byte("v"), Codec: "raw"}
	if err := l.Set(context.Background(), "k", want); err != nil {
		t.Fatal(err)
	}

	s.Pause()
	paused := true
	t.Cleanup(func() {
		if paused {
			s.Resume()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	e, err := l.Get(ctx, "k")
	if e != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get from a paused server = %v, %v; want a deadline error", e, err)
	}
	t.Logf("Get from a paused server: %v", err)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := l.GetMany(ctx2, []string{"k", "j"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetMany from a paused server = %v; want a deadline error", err)
	}

	s.Resume()
	paused = false
	ctx3, cancel3 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel3()
	e, err = l.Get(ctx3, "k")
	if err != nil || e == nil || string(e.Payload) != "v" {
		t.Fatalf("Get after Resume = %v, %v; want the entry", e, err)
	}
}

func TestClear_RemovesOnlyPrefixedKeys(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	ctx := context.Background()
	// The prefix holds glob characters: they must match themselves only.
	l := newLayerT(t, Options{Client: client, Prefix: "app[1]*:"})
	for i := range 2500 {
		if err := l.Set(ctx, strconv.Itoa(i), &driver.Entry{Payload: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"app1:x", "app[1]x", "other", "app[2]*:y"} {
		s.Do(t, "SET", k, "kept")
	}
	if err := l.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("after Clear %d keys are left (%q...), want the 4 unprefixed ones", len(keys), keys[:min(len(keys), 5)])
	}

	noPrefix := newLayerT(t, Options{Client: client})
	if err := noPrefix.Clear(ctx); err == nil {
		t.Error("Clear without a prefix succeeded")
	}
	if n := s.Do(t, "DBSIZE").(int64); n != 4 {
		t.Errorf("Clear without a prefix left %d keys, want the 4 there were", n)
	}
}

func TestNew_RejectsImpossibleOptions(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, o := range []Options{
		{},
		{Client: c, TTL: -time.Second},
		{Client: c, Timeout: -1},
		{Client: c, CompressAbove: -1},
		{Client: c, MaxValueSize: -1},
		{Client: c, MaxValueSize: 1 << 30},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	l, err := New(Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if l.Timeout() != DefaultTimeout || l.ttl != DefaultTTL || l.maxValueSize != DefaultMaxValueSize || l.Name() != "redis" {
		t.Errorf("defaults: timeout %v, ttl %v, max_value_size %d, name %q", l.Timeout(), l.ttl, l.maxValueSize, l.Name())
	}
}

func TestSet_CapsLifetimeByTTL(t *testing.T) {
	s := redistest.Start(t)
	l := newLayerT(t, Options{Client: newClient(t, s), TTL: time.Minute})
	ctx := context.Background()
	for key, exp := range map[string]int64{
		"forever": 0,
		"day":     time.Now().Add(24 * time.Hour).UnixNano(),
		"second":  time.Now().Add(10 * time.Second).UnixNano(),
	} {
		if err := l.Set(ctx, key, &driver.Entry{Payload: []byte("v"), ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		ms := s.Do(t, "PTTL", key).(int64)
		limit := int64(time.Minute / time.Millisecond)
		if exp != 0 {
			// PX is whole milliseconds, rounded up so that the key
			// never vanishes before the entry's deadline (Get checks the
			// deadline itself); allow for that and for the clock moving
			// between the Set and this line.
			limit = min(limit, time.Until(time.Unix(0, exp)).Milliseconds()+5)
		}
		if ms <= 0 || ms > limit {
			t.Errorf("PTTL of %q = %d ms, want in (0, %d]", key, ms, limit)
		}
	}
}

func TestAs_ReachesClient(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	l, err := New(Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	var u goredis.UniversalClient
	var cl *goredis.Client
	var cc *goredis.ClusterClient
	if !l.As(&u) || u != c || !l.As(&cl) || cl != c {
		t.Error("As did not give the client")
	}
	if l.As(&cc) {
		t.Error("As(**ClusterClient) = true for a standalone client")
	}
	// The layer does not own a client it was given.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()).Err(); errors.Is(err, goredis.ErrClosed) {
		t.Error("Close closed a client the layer does not own")
	}
}

func TestDeleteIfHolds_TakesBackOnlyItsOwnWrite(t *testing.T) {
	srv := redistest.Start(t)
	l, err := New(Options{Client: srv.Client(t), Prefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mine := &driver.Entry{Payload: []byte("old"), Codec: "raw", ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	theirs := &driver.Entry{Payload: []byte("old"), Codec: "raw", ExpiresAt: mine.ExpiresAt + 1}

	// Someone else's write of the same value replaced ours: it stays.
	if err := l.Set(ctx, "k", theirs); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteIfHolds(ctx, "k", mine); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); err != nil || e == nil || e.ExpiresAt != theirs.ExpiresAt {
		t.Fatalf("another writer's value was taken back: %+v, %v", e, err)
	}
	// Our own write is taken back.
	if err := l.Set(ctx, "k", mine); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteIfHolds(ctx, "k", mine); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); err != nil || e != nil {
		t.Fatalf("our own write survived: %+v, %v", e, err)
	}
	// An absent key is no error.
	if err := l.DeleteIfHolds(ctx, "absent", mine); err != nil {
		t.Fatal(err)
	}
}

// deadlineNotYetSeen is a context whose deadline has passed while its timer
// has not fired yet: the moment in which a socket deadline set from it may
// already have cut a read.
type deadlineNotYetSeen struct {
	context.Context
	deadline time.Time
}

func (c deadlineNotYetSeen) Deadline() (time.Time, bool) { return c.deadline, true }

// Regression: GetMany from a paused server could fail with a bare "i/o
// timeout" that errors.Is did not match to context.DeadlineExceeded,
// because the socket deadline fired before the context's timer.
func TestOpError_SocketTimeoutAtTheDeadlineIsTheDeadline(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	passed := deadlineNotYetSeen{context.Background(), time.Now().Add(-time.Millisecond)}
	if err := opError(passed, "get many", timeout); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("socket timeout after the context's deadline = %v; want both the deadline and the timeout", err)
	}
	// Before the context's deadline, a socket timeout is the layer's own
	// (its read timeout), not the caller's deadline.
	ahead := deadlineNotYetSeen{context.Background(), time.Now().Add(time.Hour)}
	if err := opError(ahead, "get many", timeout); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("socket timeout before the context's deadline = %v; it is not the caller's deadline", err)
	}
	if err := opError(passed, "get many", errors.New("connection refused")); errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a refused connection after the deadline = %v; only a timeout is the deadline's", err)
	}
}
