package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nutsdb/nutsdb"
	"go.uber.org/goleak"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
)

func TestMain(m *testing.M) {
	// nutsdb v1.0.4 never stops the goroutine of its unused asynchronous
	// write path; every other goroutine must be gone.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nutsdb/nutsdb.(*DB).doWrites"))
}

// quietLogger drops the warnings tests provoke on purpose.
var quietLogger = slog.New(slog.DiscardHandler)

// openLayer opens a layer on dir and closes it when the test ends.
func openLayer(t testing.TB, o Options) *Layer {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger
	}
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func entry(payload string, expiresIn time.Duration) *driver.Entry {
	e := &driver.Entry{Payload: []byte(payload), Codec: "test"}
	if expiresIn != 0 {
		e.ExpiresAt = time.Now().Add(expiresIn).UnixNano()
	}
	return e
}

func mustGet(t testing.TB, l *Layer, key string) *driver.Entry {
	t.Helper()
	e, err := l.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

func mustSet(t testing.TB, l *Layer, key string, e *driver.Entry) {
	t.Helper()
	if err := l.Set(context.Background(), key, e); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// rawPut writes value under key with nutsdb directly, bypassing the layer's
// encoding.
func rawPut(t testing.TB, l *Layer, key string, value []byte) {
	t.Helper()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	err := l.db.Update(func(tx *nutsdb.Tx) error {
		return tx.Put(bucketName, storeKey(key), value, 60)
	})
	if err != nil {
		t.Fatalf("raw put: %v", err)
	}
}

func TestConformance(t *testing.T) {
	var (
		mu     sync.Mutex
		layers = map[*testing.T]*Layer{}
	)
	open := func(t *testing.T) driver.Layer {
		l, err := New(Options{Dir: t.TempDir(), MaxSize: 16 << 20, Logger: quietLogger})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		layers[t] = l
		mu.Unlock()
		return l
	}
	corrupt := func(t *testing.T, key string) {
		mu.Lock()
		l := layers[t]
		mu.Unlock()
		rawPut(t, l, key, []byte("not an envelope"))
	}
	drivertest.RunLayerTests(t, open, drivertest.Options{Corrupt: corrupt})
}

func TestGet_CorruptValueIsErrCorruptAndRemoved(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	good, err := envelope.Marshal(entry("v", time.Hour), envelope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for name, b := range map[string][]byte{
		"foreign":     []byte("hello"),
		"flipped bit": func() []byte { c := bytes.Clone(good); c[len(c)-6] ^= 1; return c }(),
		"truncated":   good[:len(good)-2],
	} {
		mustSet(t, l, "k", entry("v", time.Hour))
		rawPut(t, l, "k", b)
		e, err := l.Get(context.Background(), "k")
		if !errors.Is(err, envelope.ErrCorrupt) || e != nil {
			t.Errorf("%s: Get = %v, %v; want an error wrapping envelope.ErrCorrupt", name, e, err)
		}
		n++
		if got := l.Stats().Corrupt; got != n {
			t.Errorf("%s: Stats().Corrupt = %d, want %d", name, got, n)
		}
		if e := mustGet(t, l, "k"); e != nil {
			t.Errorf("%s: the corrupt record was not removed: Get = %+v", name, e)
		}
		if l.Len() != 0 {
			t.Errorf("%s: Len = %d after the corrupt record was removed", name, l.Len())
		}
	}
}

func TestNew_SecondOpenOfDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	l := openLayer(t, Options{Dir: dir})
	_, err := New(Options{Dir: dir, Logger: quietLogger})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second New = %v; want an error wrapping ErrLocked naming %s", err, dir)
	}
	// The failed attempt must not have disturbed the open layer.
	mustSet(t, l, "k", entry("v", time.Hour))
	if e := mustGet(t, l, "k"); e == nil || string(e.Payload) != "v" {
		t.Fatalf("Get after a refused second New = %v", e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLayer(t, Options{Dir: dir})
	if e := mustGet(t, l2, "k"); e == nil || string(e.Payload) != "v" {
		t.Fatalf("Get after reopening = %v", e)
	}
}

func TestNew_RejectsInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		o   Options
		key string
	}{
		{Options{}, "dir"},
		{Options{Dir: dir, TTL: -time.Second}, "ttl"},
		{Options{Dir: dir, MaxSize: -1}, "max_size"},
		{Options{Dir: dir, MaxSize: 1000}, "max_size"},
		{Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 2 << 20}, "segment_size"},
		{Options{Dir: dir, SegmentSize: 100}, "segment_size"},
		{Options{Dir: dir, MergeInterval: -1}, "merge_interval"},
		{Options{Dir: dir, CompressAbove: -1}, "compress_above"},
	} {
		l, err := New(tc.o)
		if err == nil {
			l.Close()
			t.Errorf("New(%+v) succeeded; want an error about %s", tc.o, tc.key)
			continue
		}
		if !strings.Contains(err.Error(), tc.key) {
			t.Errorf("New(%+v) = %v; want it to name %s", tc.o, err, tc.key)
		}
	}
}

// fakeConfig is a configuration block that decodes by calling fill.
type fakeConfig struct{ fill func(*Options) }

func (c fakeConfig) Decode(v any) error {
	o, ok := v.(*Options)
	if !ok {
		return fmt.Errorf("decode into %T", v)
	}
	c.fill(o)
	return nil
}
func (fakeConfig) Path() string      { return "layers[2]" }
func (fakeConfig) Namespace() string { return "" }

func TestDriver_OpensLayerFromConfig(t *testing.T) {
	d, ok := driver.Lookup("disk")
	if !ok {
		t.Fatal(`driver "disk" is not registered`)
	}
	dd := d.(driver.Driver)
	dir := t.TempDir()
	l, err := dd.OpenLayer(context.Background(), fakeConfig{func(o *Options) {
		o.Dir, o.MaxSize, o.Logger = dir, 1<<20, quietLogger
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := l.(driver.Namer).Name(); n != "disk" {
		t.Errorf("Name = %q", n)
	}
	if _, ok := l.(driver.Timeouter); ok {
		t.Error("the disk layer cannot bound its own operations; the cache must time them")
	}
	_, err = dd.OpenLayer(context.Background(), fakeConfig{func(o *Options) { o.Dir, o.TTL = dir, -1 }})
	if err == nil || !strings.Contains(err.Error(), "layers[2].ttl") {
		t.Errorf("OpenLayer with a negative ttl = %v; want an error naming layers[2].ttl", err)
	}
	// A directory held by the open layer: an error and no layer, not a
	// typed nil that panics when closed.
	held, err := dd.OpenLayer(context.Background(), fakeConfig{func(o *Options) { o.Dir, o.Logger = dir, quietLogger }})
	if !errors.Is(err, ErrLocked) || held != nil {
		t.Errorf("OpenLayer of a held directory = %#v, %v; want nil and ErrLocked", held, err)
	}
}

func TestSet_TTLCapsEntryLifetime(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir(), TTL: 200 * time.Millisecond})
	mustSet(t, l, "capped", entry("v", time.Hour))
	mustSet(t, l, "no-expiry", entry("v", 0))
	start := time.Now() // both deadlines fall at most 200ms after this
	for _, key := range []string{"capped", "no-expiry"} {
		for {
			before := time.Now()
			e := mustGet(t, l, key)
			if e == nil {
				break
			}
			if before.Sub(start) > 200*time.Millisecond {
				t.Fatalf("Get(%q) returned the entry %v after the layer's TTL", key, before.Sub(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestSet_EvictsOldestWritesFirst(t *testing.T) {
	const maxSize = 64 << 10
	l := openLayer(t, Options{Dir: t.TempDir(), MaxSize: maxSize})
	payload := strings.Repeat("x", 4000)
	mustSet(t, l, "k00", entry(payload, time.Hour))
	per := l.Size() // one entry's charge
	fit := int(maxSize / per)
	for i := 1; i < fit; i++ {
		mustSet(t, l, fmt.Sprintf("k%02d", i), entry(payload, time.Hour))
	}
	if n := l.Len(); n != fit {
		t.Fatalf("Len = %d after %d writes that fit", n, fit)
	}
	// Rewriting the oldest key makes it the newest.
	mustSet(t, l, "k00", entry(payload, time.Hour))
	mustSet(t, l, "new", entry(payload, time.Hour))
	if mustGet(t, l, "k01") != nil {
		t.Error("k01, now the oldest write, survived an eviction")
	}
	for _, k := range []string{"k00", "k02", "new"} {
		if mustGet(t, l, k) == nil {
			t.Errorf("%s was evicted; want only the oldest write gone", k)
		}
	}
	if l.Size() > maxSize {
		t.Errorf("Size = %d > MaxSize %d", l.Size(), maxSize)
	}
}

func TestSet_TooLargeRecordIsRefusedAndOldValueRemoved(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir(), MaxSize: 1 << 20, SegmentSize: 64 << 10})
	mustSet(t, l, "k", entry("small", time.Hour))
	err := l.Set(context.Background(), "k", entry(strings.Repeat("x", 64<<10), time.Hour))
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("Set of a record larger than a segment = %v; want ErrValueTooLarge", err)
	}
	if e := mustGet(t, l, "k"); e != nil {
		t.Errorf("the older value survived a refused write: %q", e.Payload)
	}
}

func TestClear_EmptiesLayerAndDirectory(t *testing.T) {
	dir := t.TempDir()
	l := openLayer(t, Options{Dir: dir, MaxSize: 1 << 20})
	for i := range 500 {
		mustSet(t, l, fmt.Sprint("k", i), entry(strings.Repeat("v", 1000), time.Hour))
	}
	if err := l.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 0 || l.Size() != 0 || mustGet(t, l, "k1") != nil {
		t.Fatalf("after Clear: Len %d, Size %d", l.Len(), l.Size())
	}
	l.merge() // what Clear's signal starts, run here to measure after it
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLayer(t, Options{Dir: dir, MaxSize: 1 << 20})
	if l.Len() != 0 || mustGet(t, l, "k2") != nil {
		t.Fatalf("cleared entries came back after reopening: Len %d", l.Len())
	}
}

func TestOperations_AfterCloseReturnErrClosed(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v", err)
	}
	if err := l.Set(ctx, "k", entry("v", 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestMerge_KeepsLatestOfSameMillisecondWrites: nutsdb's merge tells a
// key's current record by transaction id and timestamp, both per
// millisecond; two writes of a key in one millisecond used to let merge
// bring back the older value.
func TestMerge_KeepsLatestOfSameMillisecondWrites(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir(), MaxSize: 1 << 20, SegmentSize: 64 << 10})
	for round := range 20 {
		for i := range 50 {
			mustSet(t, l, fmt.Sprint("k", i), entry(fmt.Sprint("old", round), time.Hour))
			mustSet(t, l, fmt.Sprint("k", i), entry(fmt.Sprint("new", round), time.Hour))
		}
		mustSet(t, l, "filler", entry(strings.Repeat("f", 60<<10), time.Hour)) // a second segment
		l.merge()
		for i := range 50 {
			if e := mustGet(t, l, fmt.Sprint("k", i)); e == nil || string(e.Payload) != fmt.Sprint("new", round) {
				t.Fatalf("round %d: k%d after merge = %v; want new%d", round, i, e, round)
			}
		}
	}
	if l.merges.Load() == 0 {
		t.Fatal("no merge ran")
	}
}

func TestSweep_ForgetsExpiredEntries(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir(), MergeInterval: 20 * time.Millisecond})
	mustSet(t, l, "short", entry("v", 50*time.Millisecond))
	mustSet(t, l, "long", entry("v", time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for l.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Len = %d long after the short entry expired", l.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if mustGet(t, l, "long") == nil {
		t.Fatal("the sweep removed a live entry")
	}
}

func TestDirectoryHoldsOnlyLayerFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/notes.dat", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{Dir: dir, Logger: quietLogger})
	if err == nil || !strings.Contains(err.Error(), "notes.dat") {
		t.Fatalf("New on a directory with a foreign .dat file = %v; want an error naming it", err)
	}
}

// TestGet_KeyGoneFromNutsdbIsForgotten: when nutsdb no longer holds a key
// the index still lists (its expiry can delete a record written as an older
// one's timer fires), Get misses and the index drops the key.
func TestGet_KeyGoneFromNutsdbIsForgotten(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	mustSet(t, l, "a", entry("v", time.Hour))
	mustSet(t, l, "b", entry("v", time.Hour))
	err := l.db.Update(func(tx *nutsdb.Tx) error {
		if err := tx.Delete(bucketName, storeKey("a")); err != nil {
			return err
		}
		return tx.Delete(bucketName, storeKey("b"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := mustGet(t, l, "a"); e != nil {
		t.Fatalf("Get of a key nutsdb no longer holds = %v", e)
	}
	es, err := l.GetMany(context.Background(), []string{"b"})
	if err != nil || es[0] != nil {
		t.Fatalf("GetMany of a key nutsdb no longer holds = %v, %v", es, err)
	}
	if l.Len() != 0 || l.Size() != 0 {
		t.Fatalf("index still holds %d keys, %d bytes", l.Len(), l.Size())
	}
}
