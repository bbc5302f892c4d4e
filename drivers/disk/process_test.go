package disk

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// The tests in this file run a copy of the test binary as a child process:
// the parent starts os.Args[0] with -test.run naming the same test and
// childEnv set, and the test, seeing childEnv, plays the child's part.
const (
	childEnv    = "LAYERCACHE_DISK_CHILD"
	childDirEnv = "LAYERCACHE_DISK_CHILD_DIR"
	childArgEnv = "LAYERCACHE_DISK_CHILD_ARG"
)

// child returns the child mode this process runs in, or "".
func child() string { return os.Getenv(childEnv) }

// startChild starts the test binary running test in mode on dir.
func startChild(t *testing.T, test, mode, dir, arg string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childDirEnv+"="+dir, childArgEnv+"="+arg)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

// waitLine reads the child's output until a line starting with prefix and
// returns the rest of it.
func waitLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return rest
		}
	}
	t.Fatalf("child ended without printing %q (%v)", prefix, sc.Err())
	return ""
}

func childFail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
	os.Exit(3)
}

// selfChecking returns a payload that proves it was written whole and for
// key: the key, a version, random filler and a hash of all three.
func selfChecking(rng *rand.Rand, key string, version, size int) []byte {
	body := make([]byte, 0, size+len(key)+80)
	body = fmt.Appendf(body, "%s|%d|", key, version)
	for len(body) < size {
		body = append(body, byte('a'+rng.IntN(26)))
	}
	sum := sha256.Sum256(body)
	return append(append(body, '|'), hex.EncodeToString(sum[:])...)
}

// checkPayload returns the version in a self-checking payload of key, or an
// error saying why the payload is not one.
func checkPayload(key string, p []byte) (int, error) {
	i := strings.LastIndexByte(string(p), '|')
	if i < 0 {
		return 0, fmt.Errorf("no hash in %d bytes", len(p))
	}
	body, want := p[:i], string(p[i+1:])
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != want {
		return 0, fmt.Errorf("hash mismatch in %d bytes", len(p))
	}
	rest, ok := strings.CutPrefix(string(body), key+"|")
	if !ok {
		return 0, fmt.Errorf("payload of another key: %.40q", body)
	}
	v, err := strconv.Atoi(rest[:strings.IndexByte(rest, '|')])
	if err != nil {
		return 0, fmt.Errorf("bad version: %v", err)
	}
	return v, nil
}

// countingHandler counts warnings, for tests that provoke repairs, and
// keeps their messages.
type countingHandler struct {
	slog.Handler
	n    *atomic.Int64
	msgs chan<- string // optional
}

func (countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	if h.msgs != nil {
		select {
		case h.msgs <- r.Message:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}

func countingLogger(n *atomic.Int64) *slog.Logger {
	return slog.New(countingHandler{slog.DiscardHandler, n, nil})
}

// TestPersistence_AcrossProcesses: a child process writes and exits; the
// parent reopens the directory and finds what was written, except expired
// entries.
func TestPersistence_AcrossProcesses(t *testing.T) {
	if child() == "persist" {
		persistChild(os.Getenv(childDirEnv))
		return
	}
	dir := t.TempDir()
	cmd, out := startChild(t, "TestPersistence_AcrossProcesses", "persist", dir, "")
	written, err := strconv.ParseInt(waitLine(t, out, "WRITTEN "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for out.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}

	l := openLayer(t, Options{Dir: dir})
	ctx := context.Background()
	// The short entries expired 100ms after their write, long before
	// nutsdb's own expiry (whole seconds): only the layer's check of
	// ExpiresAt hides them if this runs within that second.
	time.Sleep(time.Until(time.Unix(0, written).Add(120 * time.Millisecond)))
	for i := range 20 {
		if e := mustGet(t, l, fmt.Sprint("short-", i)); e != nil {
			t.Errorf("short-%d served %v after its ExpiresAt", i, time.Since(time.Unix(0, e.ExpiresAt)))
		}
	}
	for i := range 200 {
		key := fmt.Sprint("keep-", i)
		e := mustGet(t, l, key)
		if e == nil {
			t.Fatalf("%s was not kept across processes", key)
		}
		if v, err := checkPayload(key, e.Payload); err != nil || v != 1 {
			t.Fatalf("%s: payload version %d, %v", key, v, err)
		}
		if e.Codec != "persist" || len(e.Tags) != 1 || e.Tags[0] != "tag" || e.StaleAt == 0 || e.ExpiresAt == 0 {
			t.Fatalf("%s: fields not kept: %+v", key, e)
		}
	}
	es, err := l.GetMany(ctx, []string{"batch-0", "batch-9", "deleted-3", "over"})
	if err != nil {
		t.Fatal(err)
	}
	if es[0] == nil || es[1] == nil || es[2] != nil || es[3] == nil || string(es[3].Payload) != "v2" {
		t.Fatalf("GetMany after reopening = %v", es)
	}
	// The capped entries were written with the child's 1s TTL; after it
	// they are gone although their own ExpiresAt lies an hour ahead.
	time.Sleep(time.Until(time.Unix(0, written).Add(time.Second + 50*time.Millisecond)))
	for i := range 20 {
		if e := mustGet(t, l, fmt.Sprint("capped-", i)); e != nil {
			t.Errorf("capped-%d served after the TTL it was written with", i)
		}
	}
}

func persistChild(dir string) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	hour := time.Now().Add(time.Hour).UnixNano()
	mk := func(key string) *driver.Entry {
		return &driver.Entry{Payload: selfChecking(rng, key, 1, 500), Codec: "persist",
			StaleAt: hour - 1, ExpiresAt: hour, Tags: []string{"tag"}}
	}
	l, err := New(Options{Dir: dir, TTL: time.Second, Logger: quietLogger})
	if err != nil {
		childFail("%v", err)
	}
	for i := range 20 {
		key := fmt.Sprint("capped-", i)
		if err := l.Set(ctx, key, mk(key)); err != nil {
			childFail("%v", err)
		}
	}
	if err := l.Close(); err != nil {
		childFail("%v", err)
	}

	l, err = New(Options{Dir: dir, Logger: quietLogger})
	if err != nil {
		childFail("%v", err)
	}
	for i := range 200 {
		key := fmt.Sprint("keep-", i)
		if err := l.Set(ctx, key, mk(key)); err != nil {
			childFail("%v", err)
		}
	}
	var keys []string
	var entries []*driver.Entry
	for i := range 10 {
		keys = append(keys, fmt.Sprint("batch-", i))
		entries = append(entries, mk(keys[i]))
	}
	for i := range 5 {
		key := fmt.Sprint("deleted-", i)
		_ = l.Set(ctx, key, mk(key))
		_ = l.Delete(ctx, key)
	}
	_ = l.Set(ctx, "over", &driver.Entry{Payload: []byte("v1")})
	_ = l.Set(ctx, "over", &driver.Entry{Payload: []byte("v2")})
	if err := l.SetMany(ctx, keys, entries); err != nil {
		childFail("%v", err)
	}
	written := time.Now()
	for i := range 20 {
		key := fmt.Sprint("short-", i)
		e := mk(key)
		e.ExpiresAt = written.Add(100 * time.Millisecond).UnixNano()
		if err := l.Set(ctx, key, e); err != nil {
			childFail("%v", err)
		}
	}
	if err := l.Close(); err != nil {
		childFail("%v", err)
	}
	fmt.Printf("WRITTEN %d\n", written.UnixNano())
}

// crashOptions are the options of the crash test's writer and reader:
// small segments and size, so that rotations, evictions and compactions
// are frequent while the writer is killed.
func crashOptions(dir string, log *slog.Logger) Options {
	return Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 64 << 10, MergeInterval: 5 * time.Millisecond, Logger: log}
}

// TestCrash_KilledWriterLeavesOnlyWholeEntries: a child writing without
// pause is killed with SIGKILL; on reopening, every entry served is one that
// was written whole, and nothing fails.
func TestCrash_KilledWriterLeavesOnlyWholeEntries(t *testing.T) {
	if child() == "crash" {
		crashChild(os.Getenv(childDirEnv), os.Getenv(childArgEnv))
		return
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	var repairs atomic.Int64
	for round := range 4 {
		cmd, out := startChild(t, "TestCrash_KilledWriterLeavesOnlyWholeEntries", "crash", dir, strconv.Itoa(round))
		waitLine(t, out, "READY")
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		msgs := make(chan string, 16)
		l, err := New(crashOptions(dir, slog.New(countingHandler{slog.DiscardHandler, &repairs, msgs})))
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
	drain:
		for {
			select {
			case m := <-msgs:
				// A kill tears at most the last write: anything more than
				// cutting the tail would lose acknowledged writes.
				if !strings.Contains(m, "torn end") {
					t.Errorf("round %d: reopening after SIGKILL logged %q", round, m)
				}
			default:
				break drain
			}
		}
		hits := verifyAll(t, l, allKeys(l))
		if hits == 0 {
			t.Fatalf("round %d: nothing survived the crash", round)
		}
		if l.Size() > 1<<20 {
			t.Errorf("round %d: Size %d > MaxSize", round, l.Size())
		}
		t.Logf("round %d: %d entries whole after SIGKILL, %d bytes", round, hits, l.Size())
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("repairs logged over all rounds: %d", repairs.Load())
}

func crashChild(dir, arg string) {
	round, _ := strconv.Atoi(arg)
	l, err := New(crashOptions(dir, slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		childFail("%v", err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(round), uint64(os.Getpid())))
	hour := time.Now().Add(time.Hour).UnixNano()
	mk := func(key string, size int) *driver.Entry {
		return &driver.Entry{Payload: selfChecking(rng, key, round, size), Codec: "crash", ExpiresAt: hour}
	}
	key := func() string { return fmt.Sprint("k", rng.IntN(3000)) }
	for i := 0; ; i++ {
		var err error
		switch op := rng.IntN(20); {
		case op < 12:
			k := key()
			err = l.Set(ctx, k, mk(k, 100+rng.IntN(4000)))
		case op < 16:
			// Batches span segment rotations: one transaction, two files.
			keys := make([]string, 8)
			es := make([]*driver.Entry, 8)
			for j := range keys {
				keys[j] = key()
				es[j] = mk(keys[j], 100+rng.IntN(8000))
			}
			err = l.SetMany(ctx, keys, es)
		case op < 18:
			err = l.Delete(ctx, key(), key())
		default:
			// Large enough that one write spans many pages.
			k := key()
			err = l.Set(ctx, k, mk(k, 40_000))
		}
		if err != nil {
			childFail("write %d: %v", i, err)
		}
		if i == 300 {
			fmt.Println("READY")
		}
	}
}

// allKeys returns the keys the layer's index holds.
func allKeys(l *Layer) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	keys := make([]string, 0, len(l.idx.items))
	for k := range l.idx.items {
		keys = append(keys, k)
	}
	return keys
}

// verifyAll reads keys and fails the test on any error or any entry that
// is not a whole self-checking payload of its key. It returns the hits.
func verifyAll(t *testing.T, l *Layer, keys []string) int {
	t.Helper()
	hits := 0
	for _, k := range keys {
		e, err := l.Get(context.Background(), k)
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if e == nil {
			continue
		}
		if _, err := checkPayload(k, e.Payload); err != nil {
			t.Fatalf("Get(%q) returned a payload not written whole: %v", k, err)
		}
		hits++
	}
	return hits
}

// TestNew_DirectoryLockedByAnotherProcess: a layer in a child process
// cannot open the directory the parent's layer holds.
func TestNew_DirectoryLockedByAnotherProcess(t *testing.T) {
	if child() == "lock" {
		dir := os.Getenv(childDirEnv)
		l, err := New(Options{Dir: dir, Logger: quietLogger})
		if err == nil {
			l.Close()
			childFail("New succeeded on a directory another process holds")
		}
		fmt.Printf("ERR %s\n", err)
		return
	}
	dir := t.TempDir()
	openLayer(t, Options{Dir: dir})
	cmd, out := startChild(t, "TestNew_DirectoryLockedByAnotherProcess", "lock", dir, "")
	msg := waitLine(t, out, "ERR ")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(msg, dir) || !strings.Contains(msg, "locked") {
		t.Fatalf("child's New failed with %q; want an error naming %s as locked", msg, dir)
	}
}
