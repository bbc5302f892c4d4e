package redis

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

// slowCommand is the longest a command of a prefix invalidation may run,
// in microseconds, as Redis's slow log measures it.
const slowCommand = 10000

// writeNumbered writes n entries under prefix+i through l, every tagEvery-th
// one tagged "t" (none when tagEvery is 0), in batches of 1000.
func writeNumbered(t testing.TB, l *Layer, prefix string, n, tagEvery int) []string {
	t.Helper()
	ctx := context.Background()
	var all []string
	keys := make([]string, 0, 1000)
	entries := make([]*driver.Entry, 0, 1000)
	exp := time.Now().Add(time.Hour).UnixNano()
	flush := func() {
		if err := l.SetMany(ctx, keys, entries); err != nil {
			t.Fatalf("SetMany: %v", err)
		}
		keys, entries = keys[:0], entries[:0]
	}
	for i := range n {
		e := &driver.Entry{Payload: []byte("value " + strconv.Itoa(i)), Codec: "raw", ExpiresAt: exp}
		if tagEvery > 0 && i%tagEvery == 0 {
			e.Tags = []string{"t"}
		}
		k := prefix + strconv.Itoa(i)
		keys = append(keys, k)
		entries = append(entries, e)
		all = append(all, k)
		if len(keys) == cap(keys) {
			flush()
		}
	}
	if len(keys) > 0 {
		flush()
	}
	return all
}

// countOnNodes counts the keys matching pattern on every node.
func countOnNodes(t testing.TB, nodes []*goredis.Client, pattern string) int {
	t.Helper()
	n := 0
	for _, c := range nodes {
		var cursor uint64
		for {
			keys, next, err := c.Scan(context.Background(), cursor, pattern, 5000).Result()
			if err != nil {
				t.Fatalf("SCAN: %v", err)
			}
			n += len(keys)
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return n
}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct {
	calls int64
	usec  int64
}

// commandStats returns the calls and time of each command, summed over
// nodes.
func commandStats(t testing.TB, nodes []*goredis.Client) map[string]cmdStat {
	t.Helper()
	out := map[string]cmdStat{}
	for _, c := range nodes {
		info, err := c.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatalf("INFO commandstats: %v", err)
		}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || !strings.HasPrefix(name, "cmdstat_") {
				continue
			}
			var s cmdStat
			for _, f := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(f, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					s.calls = n
				case "usec":
					s.usec = n
				}
			}
			name = strings.TrimPrefix(name, "cmdstat_")
			out[name] = cmdStat{out[name].calls + s.calls, out[name].usec + s.usec}
		}
	}
	return out
}

// statsDelta describes what ran between two commandStats, for the log.
func statsDelta(before, after map[string]cmdStat) (string, int64) {
	var parts []string
	var total int64
	for name, a := range after {
		d := a.calls - before[name].calls
		if d <= 0 || name == "info" || name == "slowlog" {
			continue
		}
		total += d
		parts = append(parts, fmt.Sprintf("%s=%d (%.1fµs avg)", name, d, float64(a.usec-before[name].usec)/float64(d)))
	}
	return strings.Join(parts, ", "), total
}

// logEveryCommand makes each node's slow log keep every command, proves
// that it times them with a command known to take 20ms, and empties it.
func logEveryCommand(t testing.TB, nodes []*goredis.Client) {
	t.Helper()
	ctx := context.Background()
	for _, c := range nodes {
		for _, kv := range [][2]string{{"slowlog-log-slower-than", "0"}, {"slowlog-max-len", "1000000"}} {
			if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatalf("CONFIG SET %s: %v", kv[0], err)
			}
		}
		if err := c.SlowLogReset(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, "DEBUG", "SLEEP", "0.02").Err(); err != nil {
			t.Fatalf("DEBUG SLEEP: %v", err)
		}
		logs, err := c.SlowLogGet(ctx, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(logs, func(l goredis.SlowLog) bool { return l.Duration >= 20*time.Millisecond }) {
			t.Fatalf("the slow log did not time a 20ms DEBUG SLEEP: %v", logs)
		}
		if err := c.SlowLogReset(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// moreArgs matches what the slow log puts in place of arguments past its
// 32nd.
var moreArgs = regexp.MustCompile(`^\.\.\. \((\d+) more arguments\)$`)

// checkCommands reads every command the nodes logged. It fails the test
// for a SCAN or UNLINK larger than the layer's bounds, which would make
// the time a command takes grow with the number of keys, and returns those
// that took longer than slowCommand.
func checkCommands(t testing.TB, nodes []*goredis.Client) (slow []string) {
	t.Helper()
	for _, c := range nodes {
		logs, err := c.SlowLogGet(context.Background(), -1).Result()
		if err != nil {
			t.Fatalf("SLOWLOG GET: %v", err)
		}
		for _, l := range logs {
			name := strings.ToLower(l.Args[0])
			n := len(l.Args) - 1
			if m := moreArgs.FindStringSubmatch(l.Args[len(l.Args)-1]); m != nil {
				more, _ := strconv.Atoi(m[1])
				n += more - 1
			}
			switch name {
			case "unlink":
				if n > prefixBatch {
					t.Errorf("UNLINK of %d keys, more than %d", n, prefixBatch)
				}
			case "scan":
				i := slices.IndexFunc(l.Args, func(a string) bool { return strings.EqualFold(a, "count") })
				if i < 0 || i+1 >= len(l.Args) || l.Args[i+1] != strconv.Itoa(prefixScanCount) {
					t.Errorf("SCAN %q, want COUNT %d", l.Args, prefixScanCount)
				}
			}
			if l.Duration > slowCommand*time.Microsecond {
				args := l.Args
				if len(args) > 4 {
					args = append(args[:4:4], "...")
				}
				slow = append(slow, fmt.Sprintf("%s: %q took %v", c.Options().Addr, args, l.Duration))
			}
		}
	}
	return slow
}

func TestInvalidatePrefix_200kKeysNoCommandOver10ms(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200,000 keys")
	}
	t.Run("standalone", func(t *testing.T) {
		s := redistest.Start(t)
		favourRedis(t, s.Pid())
		client := newClient(t, s)
		testLargePrefix(t, client, []*goredis.Client{client})
	})
	t.Run("cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, 3)
		client := newClusterClient(t, c)
		var nodes []*goredis.Client
		for _, n := range c.Nodes() {
			favourRedis(t, n.Pid())
			nodes = append(nodes, newClient(t, n))
		}
		testLargePrefix(t, client, nodes)
	})
}

// largePrefixAttempts is how many times testLargePrefix measures before it
// fails. The slow log times commands by the wall clock, so a host that
// leaves Redis waiting for a CPU mid-command (the test machine is shared)
// can make any command look slow, even an UNLINK of one key; a command
// that is slow because of the keys it handles is slow on every attempt.
// checkCommands meanwhile checks on every attempt, without timing, that no
// command handles more than a bounded number of keys.
const largePrefixAttempts = 4

func testLargePrefix(t *testing.T, client goredis.UniversalClient, nodes []*goredis.Client) {
	for attempt := 1; ; attempt++ {
		slow := largePrefixOnce(t, client, nodes)
		if len(slow) == 0 || t.Failed() {
			return
		}
		if attempt == largePrefixAttempts {
			t.Errorf("on each of %d attempts, commands took more than %v; on the last:\n%s",
				attempt, slowCommand*time.Microsecond, strings.Join(slow, "\n"))
			return
		}
		t.Logf("attempt %d: %d commands took more than %v, measuring again:\n%s",
			attempt, len(slow), slowCommand*time.Microsecond, strings.Join(slow, "\n"))
	}
}

func largePrefixOnce(t *testing.T, client goredis.UniversalClient, nodes []*goredis.Client) (slow []string) {
	const n = 200000
	ctx := context.Background()
	for _, c := range nodes {
		if err := c.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A generous timeout: the fill writes 1000 keys a call.
	l := newLayerT(t, Options{Client: client, Prefix: "app:", Timeout: 10 * time.Second})
	writeNumbered(t, l, "big:", n, 10)
	writeNumbered(t, l, "keep:", 1000, 10)
	writeNumbered(t, l, "bi", 100, 0) // a shorter key that the prefix must not match
	if err := client.Set(ctx, "big:foreign", "not the layer's", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := countOnNodes(t, nodes, "app:big:*"); got != n {
		t.Fatalf("%d keys written under the prefix, want %d", got, n)
	}

	logEveryCommand(t, nodes)
	before := commandStats(t, nodes)
	if err := l.InvalidatePrefix(ctx, "big:"); err != nil {
		t.Fatalf("InvalidatePrefix: %v", err)
	}
	ran, total := statsDelta(before, commandStats(t, nodes))
	t.Logf("InvalidatePrefix of %d keys ran %d commands: %s", n, total, ran)
	slow = checkCommands(t, nodes)

	if got := countOnNodes(t, nodes, "app:big:*"); got != 0 {
		t.Errorf("%d keys under the prefix survived", got)
	}
	if got := countOnNodes(t, nodes, "app:keep:*"); got != 1000 {
		t.Errorf("%d of the 1000 keys under another prefix are left", got)
	}
	if got := countOnNodes(t, nodes, "app:bi[0-9]*"); got != 100 {
		t.Errorf("%d of the 100 keys with a shorter prefix are left", got)
	}
	if err := client.Get(ctx, "big:foreign").Err(); err != nil {
		t.Errorf("a key outside the layer's prefix: %v", err)
	}
	// The tag's index still names the deleted keys; invalidating the tag
	// deletes the rest and does not stumble on them.
	if err := l.InvalidateTags(ctx, "t"); err != nil {
		t.Fatalf("InvalidateTags after InvalidatePrefix: %v", err)
	}
	if got := countOnNodes(t, nodes, "app:keep:*"); got != 900 {
		t.Errorf("%d keys left under keep: after invalidating the tag of 100 of them, want 900", got)
	}
	return slow
}

func TestInvalidatePrefix_LeavesTagIndexesAlone(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	l := newLayerT(t, Options{Client: client, Prefix: "app:"})
	ctx := context.Background()
	e := &driver.Entry{Payload: []byte("v"), Codec: "raw", Tags: []string{"x"}}
	for _, k := range []string{"\x00tag-like", "plain"} {
		if err := l.Set(ctx, k, e); err != nil {
			t.Fatal(err)
		}
	}
	// "\x00" is where the layer keeps its tag indexes: a prefix matching
	// them must still not remove them.
	if err := l.InvalidatePrefix(ctx, "\x00"); err != nil {
		t.Fatal(err)
	}
	if n := client.Exists(ctx, l.tagKey("x")).Val(); n != 1 {
		t.Fatal("InvalidatePrefix removed a tag index")
	}
	if got, _ := l.Get(ctx, "\x00tag-like"); got != nil {
		t.Error("the entry under the prefix survived")
	}
	if err := l.InvalidateTags(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "plain"); got != nil {
		t.Error("InvalidateTags after InvalidatePrefix missed an entry")
	}
}

func TestEmptyPrefixWithoutLayerPrefixIsRefused(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	l := newLayerT(t, Options{Client: client})
	ctx := context.Background()
	if err := client.Set(ctx, "other-program", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"InvalidatePrefix": l.InvalidatePrefix(ctx, ""),
		"ExpirePrefix":     l.ExpirePrefix(ctx, ""),
	} {
		if err == nil || !strings.Contains(err.Error(), "every key in the database") {
			t.Errorf("%s(\"\") on a layer without a prefix = %v, want a refusal", name, err)
		}
	}
	if client.Exists(ctx, "other-program").Val() != 1 {
		t.Error("another program's key is gone")
	}
}
