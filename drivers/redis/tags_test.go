package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

func tagged(payload string, ttl time.Duration, tags ...string) *driver.Entry {
	e := &driver.Entry{Payload: []byte(payload), Tags: tags}
	if ttl > 0 {
		e.ExpiresAt = time.Now().Add(ttl).UnixNano()
		e.StaleAt = e.ExpiresAt
	}
	return e
}

func exists(t testing.TB, c goredis.UniversalClient, keys ...string) int64 {
	t.Helper()
	var n int64
	for _, k := range keys { // one by one: a Cluster refuses EXISTS across slots
		m, err := c.Exists(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	return n
}

func TestInvalidateTags_Standalone(t *testing.T) {
	t.Parallel()
	testTags(t, newClient(t, redistest.Start(t)))
}

// testTags runs on a standalone server and on a Cluster, where a tag's
// keys sit in many slots.
func testTags(t *testing.T, client goredis.UniversalClient) {
	ctx := context.Background()
	l := newLayerT(t, Options{Client: client, Prefix: testPrefix(t)})
	k := func(key string) string { return l.prefix + key }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Set(ctx, "a1", tagged("a1", 0, "a")))
	must(l.Set(ctx, "ab", tagged("ab", time.Minute, "a", "b")))
	must(l.Set(ctx, "b1", tagged("b1", 0, "b")))
	must(l.Set(ctx, "plain", tagged("plain", 0)))
	var keys []string
	var entries []*driver.Entry
	for i := range 300 {
		keys = append(keys, "many"+strconv.Itoa(i))
		entries = append(entries, tagged("m", time.Minute, "a", "many"))
	}
	must(l.SetMany(ctx, keys, entries))
	if n := exists(t, client, l.tagKey("a"), l.tagKey("b"), l.tagKey("many")); n != 3 {
		t.Fatalf("%d of 3 tag indexes exist", n)
	}

	must(l.InvalidateTags(ctx, "a"))
	if n := exists(t, client, k("a1"), k("ab"), k("many0"), k("many299")); n != 0 {
		t.Errorf("%d entries tagged a survived its invalidation", n)
	}
	if n := exists(t, client, k("b1"), k("plain")); n != 2 {
		t.Errorf("%d of 2 entries without tag a survived", n)
	}
	if n := exists(t, client, l.tagKey("a")); n != 0 {
		t.Error("the index of an invalidated tag is left")
	}
	// The renamed index is gone too: nothing but entries and live
	// indexes is left under the prefix.
	if n := countPrefixed(t, client, l.prefix); n != 4 { // b1, plain, indexes of b and many
		t.Errorf("%d keys left under the prefix, want 4", n)
	}

	// Invalidating a tag of deleted entries, several tags, an unknown tag.
	must(l.InvalidateTags(ctx, "many", "b", "nobody"))
	if n := exists(t, client, k("b1")); n != 0 {
		t.Error("entry tagged b survived")
	}
	if n := countPrefixed(t, client, l.prefix); n != 1 {
		t.Errorf("%d keys left under the prefix, want only plain", n)
	}

	// Tags that would upset a Cluster hash tag.
	for i, tag := range []string{"", "{x}", "a}b", "x{y", "}", "{}"} {
		key := "odd" + strconv.Itoa(i)
		must(l.Set(ctx, key, tagged(key, 0, tag)))
		must(l.InvalidateTags(ctx, tag))
		if n := exists(t, client, k(key)); n != 0 {
			t.Errorf("tag %q: entry survived", tag)
		}
	}
	// A write after an invalidation is indexed afresh.
	must(l.Set(ctx, "again", tagged("x", 0, "a")))
	must(l.InvalidateTags(ctx, "a"))
	if n := exists(t, client, k("again")); n != 0 {
		t.Error("entry written after an invalidation survived the next")
	}
}

// countPrefixed counts the keys under prefix, on every master of a Cluster.
func countPrefixed(t *testing.T, client goredis.UniversalClient, prefix string) int {
	t.Helper()
	ctx := context.Background()
	count := func(ctx context.Context, c goredis.Cmdable) (int, error) {
		n := 0
		iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		return n, iter.Err()
	}
	if cc, ok := client.(*goredis.ClusterClient); ok {
		var total atomic.Int64 // masters are scanned concurrently
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			n, err := count(ctx, c)
			total.Add(int64(n))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return int(total.Load())
	}
	n, err := count(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTagIndex_LivesAsLongAsItsLongestEntry(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	l := newLayerT(t, Options{Client: client, Prefix: "p:", TTL: 2 * time.Hour})
	ctx := context.Background()
	pttl := func() time.Duration {
		d, err := client.PTTL(ctx, l.tagKey("t")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := l.Set(ctx, "k1", tagged("x", 30*time.Minute, "t")); err != nil {
		t.Fatal(err)
	}
	if d := pttl(); d < 29*time.Minute || d > 30*time.Minute {
		t.Errorf("index PTTL %v after a 30m entry", d)
	}
	if err := l.Set(ctx, "k2", tagged("x", 10*time.Minute, "t")); err != nil {
		t.Fatal(err)
	}
	if d := pttl(); d < 29*time.Minute {
		t.Errorf("a shorter entry cut the index's PTTL to %v", d)
	}
	// An entry without an expiry lives for the layer's TTL, and so does
	// the index.
	if err := l.SetMany(ctx, []string{"k3"}, []*driver.Entry{tagged("x", 0, "t")}); err != nil {
		t.Fatal(err)
	}
	if d := pttl(); d < 119*time.Minute || d > 2*time.Hour {
		t.Errorf("index PTTL %v after an entry living the layer's 2h TTL", d)
	}
}

func TestTagIndex_PrunesMembersWhoseEntriesExpired(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	l := newLayerT(t, Options{Client: client, Prefix: "p:"})
	ctx := context.Background()
	if err := l.Set(ctx, "long", tagged("x", time.Hour, "t")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var entries []*driver.Entry
	for i := range 20 {
		keys = append(keys, "short"+strconv.Itoa(i))
		entries = append(entries, tagged("x", 100*time.Millisecond, "t"))
	}
	// One batch, one index update: none of them can prune another.
	if err := l.SetMany(ctx, keys, entries); err != nil {
		t.Fatal(err)
	}
	if n := client.ZCard(ctx, l.tagKey("t")).Val(); n != 21 {
		t.Fatalf("index holds %d members, want 21", n)
	}
	time.Sleep(150 * time.Millisecond)
	if err := l.Set(ctx, "new", tagged("x", time.Hour, "t")); err != nil {
		t.Fatal(err)
	}
	members := client.ZRange(ctx, l.tagKey("t"), 0, -1).Val()
	if strings.Join(members, ",") != "long,new" && strings.Join(members, ",") != "new,long" {
		t.Errorf("index after pruning = %v, want long and new", members)
	}
}

func TestTags_WorkAfterTheScriptCacheIsFlushed(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	l := newLayerT(t, Options{Client: client, Prefix: "p:"})
	ctx := context.Background()
	for i := range 2 {
		s.Do(t, "SCRIPT", "FLUSH")
		if err := l.Set(ctx, "one", tagged("x", 0, "t")); err != nil {
			t.Fatalf("Set after SCRIPT FLUSH: %v", err)
		}
		s.Do(t, "SCRIPT", "FLUSH")
		if err := l.SetMany(ctx, []string{"two", "three"}, []*driver.Entry{tagged("x", 0, "t"), tagged("y", 0, "u")}); err != nil {
			t.Fatalf("SetMany after SCRIPT FLUSH: %v", err)
		}
		if n := client.ZCard(ctx, l.tagKey("t")).Val(); n != 2 {
			t.Fatalf("round %d: index t holds %d members, want 2", i, n)
		}
		if err := l.InvalidateTags(ctx, "t", "u"); err != nil {
			t.Fatal(err)
		}
		if n := exists(t, client, "p:one", "p:two", "p:three"); n != 0 {
			t.Fatalf("%d entries survived", n)
		}
	}
}

func TestTags_EntryThatCannotBeIndexedIsNotKept(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := aclClient(t, s, "noscripts", "-@scripting")
	l := newLayerT(t, Options{Client: client, Prefix: "p:"})
	ctx := context.Background()
	s.Do(t, "SET", "p:k", "older")
	err := l.Set(ctx, "k", tagged("x", 0, "t"))
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("Set = %v, want the index's NOPERM", err)
	}
	err = l.SetMany(ctx, []string{"m", "plain"}, []*driver.Entry{tagged("x", 0, "t"), tagged("y", 0)})
	if err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SetMany = %v, want the index's NOPERM", err)
	}
	if n := exists(t, client, "p:k", "p:m"); n != 0 {
		t.Errorf("%d unindexed tagged entries were kept", n)
	}
	if n := exists(t, client, "p:plain"); n != 1 {
		t.Error("the untagged entry of the batch was not written")
	}
	// Untagged writes need no script.
	if err := l.Set(ctx, "k", tagged("x", 0)); err != nil {
		t.Fatal(err)
	}
}

// bigTag is the size of the tag whose invalidation must not block Redis.
const bigTag = 100_000

// fillTag writes n entries tagged tag, in batches as a warm-up would.
func fillTag(t testing.TB, l *Layer, tag string, n int) {
	t.Helper()
	ctx := context.Background()
	keys := make([]string, 0, 1000)
	entries := make([]*driver.Entry, 0, 1000)
	e := tagged("0123456789abcdef", 10*time.Minute, tag)
	for i := range n {
		keys = append(keys, fmt.Sprintf("%s:%d", tag, i))
		entries = append(entries, e)
		if len(keys) == cap(keys) || i == n-1 {
			if err := l.SetMany(ctx, keys, entries); err != nil {
				t.Fatal(err)
			}
			keys, entries = keys[:0], entries[:0]
		}
	}
}

// TestInvalidateTags_LargeTagNeverBlocksRedis checks with Redis's own
// instruments that invalidating a tag of 100,000 keys is made of short
// commands: no command in the SLOWLOG takes 10ms or more, no latency event
// reaches 10ms, and no command carries more than a batch of keys. It runs
// alone (not in parallel) so that other tests do not slow Redis down.
func TestInvalidateTags_LargeTagNeverBlocksRedis(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	l := newLayerT(t, Options{Client: client, Prefix: "big:"})
	ctx := context.Background()
	fillTag(t, l, "hot", bigTag)
	fillTag(t, l, "cold", 100)
	if n := client.DBSize(ctx).Val(); n != bigTag+100+2 {
		t.Fatalf("DBSIZE = %d after filling", n)
	}

	s.Do(t, "CONFIG", "SET", "latency-monitor-threshold", "1")
	s.Do(t, "CONFIG", "SET", "slowlog-log-slower-than", "0") // log every command, to see their sizes too
	s.Do(t, "CONFIG", "SET", "slowlog-max-len", "100000")
	s.Do(t, "LATENCY", "RESET")
	s.Do(t, "SLOWLOG", "RESET")

	if err := l.InvalidateTags(ctx, "hot"); err != nil {
		t.Fatal(err)
	}

	logged, err := client.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	s.Do(t, "CONFIG", "SET", "slowlog-log-slower-than", "10000")
	ours, longest, widest := 0, time.Duration(0), 0
	defer func() {
		t.Logf("invalidation of %d keys: %d commands, the longest took %v, the widest had %d arguments", bigTag, ours, longest, widest)
	}()
	for _, e := range logged {
		if len(e.Args) == 0 {
			continue
		}
		switch cmd := strings.ToUpper(e.Args[0]); cmd {
		case "CONFIG", "SLOWLOG", "LATENCY", "HELLO", "CLIENT", "PING":
			continue
		}
		ours++
		longest, widest = max(longest, e.Duration), max(widest, argCount(e.Args))
		if e.Duration >= 10*time.Millisecond {
			t.Errorf("%s took %v", strings.Join(e.Args[:min(3, len(e.Args))], " "), e.Duration)
		}
		if n := argCount(e.Args); n > tagBatch+1 {
			t.Errorf("%s carried %d arguments", e.Args[0], n)
		}
	}
	if ours < bigTag/tagBatch {
		t.Errorf("only %d commands logged; the slow log missed some", ours)
	}
	if events, ok := s.Do(t, "LATENCY", "LATEST").([]any); ok {
		for _, ev := range events {
			f, _ := ev.([]any)
			if len(f) >= 4 {
				if worst, _ := f[3].(int64); worst >= 10 {
					t.Errorf("latency event %v peaked at %dms", f[0], worst)
				}
			}
		}
	}
	// Everything tagged hot, and its index, is gone; the rest is intact.
	if n := client.DBSize(ctx).Val(); n != 100+1 {
		t.Errorf("DBSIZE = %d after the invalidation, want the 100 cold entries and their index", n)
	}
}

// argCount returns how many arguments a SLOWLOG entry's command had:
// Redis keeps 32 and says how many more there were.
func argCount(args []string) int {
	n := len(args)
	if last := args[n-1]; strings.HasPrefix(last, "... (") {
		var more int
		if _, err := fmt.Sscanf(last, "... (%d more arguments)", &more); err == nil {
			return n - 1 + more
		}
	}
	return n
}

// BenchmarkInvalidateTags reports how long invalidating one large tag
// takes end to end, and its cost per key. Run it with -benchtime=Nx:
// refilling the tag between rounds takes longer than the invalidation.
func BenchmarkInvalidateTags(b *testing.B) {
	s := redistest.Start(b)
	client := newClient(b, s)
	l := newLayerT(b, Options{Client: client, Prefix: "bench:"})
	ctx := context.Background()
	for _, n := range []int{10_000, bigTag} {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fillTag(b, l, "t", n)
				b.StartTimer()
				if err := l.InvalidateTags(ctx, "t"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}

// testClusterCrossInstance runs the tag index, the bus and the coordinator
// on a Cluster client (from TestCluster, which starts the cluster once).
func testClusterCrossInstance(t *testing.T, client *goredis.ClusterClient) {
	t.Run("Tags", func(t *testing.T) { testTags(t, client) })

	t.Run("TagsUnderAPrefixWithAnEmptyHashTag", func(t *testing.T) {
		// The index cannot be renamed within its slot: it is consumed in
		// place.
		l := newLayerT(t, Options{Client: client, Prefix: "e{}:"})
		if keySlot(l.tagKey("t")+":gone:x") == keySlot(l.tagKey("t")) {
			t.Fatal("the test needs an index that cannot be renamed within its slot")
		}
		fillTag(t, l, "t", 1234)
		if err := l.Set(context.Background(), "other", tagged("x", 0, "u")); err != nil {
			t.Fatal(err)
		}
		if err := l.InvalidateTags(context.Background(), "t"); err != nil {
			t.Fatal(err)
		}
		if n := countPrefixed(t, client, l.prefix); n != 2 { // other and its index
			t.Fatalf("%d keys left, want 2", n)
		}
	})

	t.Run("Bus", func(t *testing.T) {
		a, _ := newBusT(t, client, "cluster")
		_, r := newBusT(t, client, "cluster")
		if err := a.Publish(context.Background(), driver.Message{Origin: "a", Op: driver.OpDelete, Keys: []string{"k"}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery through the cluster", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 1 })
	})

	t.Run("Coordinator", func(t *testing.T) {
		for _, mode := range waitModes {
			a := newCoordinatorT(t, CoordinatorOptions{Client: client, Namespace: "cluster", Wait: mode})
			b := newCoordinatorT(t, CoordinatorOptions{Client: client, Namespace: "cluster", Wait: mode})
			for i := range 20 { // keys over several nodes
				key := string(mode) + strconv.Itoa(i)
				l := acquire(t, a, key)
				if l == nil || acquire(t, b, key) != nil {
					t.Fatalf("%s: lock not exclusive", key)
				}
				done := make(chan error, 1)
				go func() { done <- b.Wait(context.Background(), key) }()
				if err := l.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
