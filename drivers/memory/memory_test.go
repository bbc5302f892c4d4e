package memory

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
)

func newLayer(t *testing.T, o Options) *Layer {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	for name, o := range map[string]Options{
		"defaults": {},
		"ttl=1h":   {TTL: time.Hour, MaxSize: 5000},
	} {
		t.Run(name, func(t *testing.T) {
			drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
				return newLayer(t, o)
			}, drivertest.Options{})
		})
	}
}

func TestNew_RejectsNegativeOptions(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{TTL: -time.Second}, "ttl"},
		{Options{MaxSize: -1}, "max_size"},
	} {
		l, err := New(c.o)
		if err == nil {
			_ = l.Close()
			t.Errorf("New(%+v) succeeded, want an error", c.o)
			continue
		}
		if !strings.HasPrefix(err.Error(), "layercache/memory: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) error %q does not name %q", c.o, err, c.want)
		}
	}
}

func TestNew_ZeroMaxSizeMeansDefault(t *testing.T) {
	l := newLayer(t, Options{})
	if got := l.cache.GetMaximum(); got != DefaultMaxSize {
		t.Errorf("maximum = %d, want %d", got, DefaultMaxSize)
	}
}

func TestEviction_HoldsExactlyMaxSize(t *testing.T) {
	const maxSize = 500
	l := newLayer(t, Options{MaxSize: maxSize})
	ctx := context.Background()
	for i := range 3 * maxSize {
		if err := l.Set(ctx, "k"+strconv.Itoa(i), &driver.Entry{Value: i}); err != nil {
			t.Fatal(err)
		}
	}
	l.cache.CleanUp()
	if n := l.Len(); n != maxSize {
		t.Errorf("Len() = %d after writing %d keys, want %d", n, 3*maxSize, maxSize)
	}
	hits := 0
	for i := range 3 * maxSize {
		if e, _ := l.Get(ctx, "k"+strconv.Itoa(i)); e != nil {
			hits++
		}
	}
	if hits != maxSize {
		t.Errorf("%d keys readable, want %d", hits, maxSize)
	}
}

// TestTTL_CapsEntryLifetime checks the deadline otter is given, not the
// passing of time: with TTL 1h an entry without ExpiresAt, or with a later
// one, expires within the hour; an earlier ExpiresAt stands.
func TestTTL_CapsEntryLifetime(t *testing.T) {
	l := newLayer(t, Options{TTL: time.Hour})
	ctx := context.Background()
	now := time.Now()
	for _, c := range []struct {
		key       string
		expiresAt time.Time // zero: none
		want      time.Time
	}{
		{"none", time.Time{}, now.Add(time.Hour)},
		{"later", now.Add(48 * time.Hour), now.Add(time.Hour)},
		{"earlier", now.Add(time.Minute), now.Add(time.Minute)},
	} {
		e := &driver.Entry{Value: c.key}
		if !c.expiresAt.IsZero() {
			e.ExpiresAt = c.expiresAt.UnixNano()
		}
		if err := l.Set(ctx, c.key, e); err != nil {
			t.Fatal(err)
		}
		oe, ok := l.cache.GetEntryQuietly(c.key)
		if !ok {
			t.Fatalf("%s: entry missing", c.key)
		}
		// The deadline is computed after now was read, so it may be later by
		// the time the test took so far, never earlier.
		if got := oe.ExpiresAt(); got.Before(c.want.Add(-time.Millisecond)) || got.After(c.want.Add(10*time.Second)) {
			t.Errorf("%s: otter deadline %v, want about %v", c.key, got, c.want)
		}
	}
}

func TestNoTTL_EntryWithoutExpiryNeverExpires(t *testing.T) {
	l := newLayer(t, Options{})
	if err := l.Set(context.Background(), "k", &driver.Entry{Value: 1}); err != nil {
		t.Fatal(err)
	}
	oe, ok := l.cache.GetEntryQuietly("k")
	if !ok {
		t.Fatal("entry missing")
	}
	if y := oe.ExpiresAt().Year(); y < 2200 {
		t.Errorf("entry without ExpiresAt and layer without TTL expires in %d", y)
	}
}

func TestSet_NilEntryIsAnError(t *testing.T) {
	l := newLayer(t, Options{})
	if err := l.Set(context.Background(), "k", nil); err == nil {
		t.Error("Set of a nil entry succeeded")
	}
}

func TestGet_HitDoesNotAllocate(t *testing.T) {
	l := newLayer(t, Options{TTL: time.Hour})
	ctx := context.Background()
	e := &driver.Entry{Value: "v", ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	if err := l.Set(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	var layer driver.Layer = l
	if n := testing.AllocsPerRun(1000, func() {
		if got, _ := layer.Get(ctx, "k"); got != e {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Errorf("Get allocates %v times per hit, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = layer.Get(ctx, "absent") }); n != 0 {
		t.Errorf("Get allocates %v times per miss, want 0", n)
	}
}

func TestInvalidateTags_KeepsEntryRewrittenWithoutTag(t *testing.T) {
	l := newLayer(t, Options{})
	ctx := context.Background()
	_ = l.Set(ctx, "k", &driver.Entry{Value: 1, Tags: []string{"t"}})
	untagged := &driver.Entry{Value: 2}
	_ = l.Set(ctx, "k", untagged)
	if err := l.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "k"); got != untagged {
		t.Errorf("Get = %v, want the untagged entry", got)
	}
}

func TestClose_StopsEveryGoroutine(t *testing.T) {
	goleak.VerifyNone(t) // nothing else of this test binary may be running
	l, err := New(Options{TTL: time.Minute, MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Enough writes and reads to make otter start maintenance goroutines.
	for i := range 1000 {
		_ = l.Set(ctx, strconv.Itoa(i), &driver.Entry{Value: i})
		_, _ = l.Get(ctx, strconv.Itoa(i/2))
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	goleak.VerifyNone(t)
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDriver_OpensFromConfig(t *testing.T) {
	d, ok := driver.Lookup("memory")
	if !ok {
		t.Fatal(`driver "memory" is not registered`)
	}
	ld, ok := d.(driver.Driver)
	if !ok {
		t.Fatalf("registered driver %T is not a driver.Driver", d)
	}
	ctx := context.Background()

	l, err := ld.OpenLayer(ctx, fakeConfig{values: map[string]any{"ttl": time.Minute, "max_size": 42}})
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	m := l.(*Layer)
	if m.ttl != time.Minute || m.cache.GetMaximum() != 42 {
		t.Errorf("opened layer has ttl %v, max %d; want 1m0s, 42", m.ttl, m.cache.GetMaximum())
	}

	_, err = ld.OpenLayer(ctx, fakeConfig{values: map[string]any{"ttl": -time.Second}})
	if err == nil || !strings.Contains(err.Error(), "layers[0].ttl") {
		t.Errorf("OpenLayer with a negative ttl: error %v, want one naming layers[0].ttl", err)
	}

	decodeErr := errors.New("layers[0]: unknown key \"size\"")
	_, err = ld.OpenLayer(ctx, fakeConfig{err: decodeErr})
	if !errors.Is(err, decodeErr) {
		t.Errorf("OpenLayer with a bad block: error %v, want it to wrap %v", err, decodeErr)
	}
}

// fakeConfig stands in for the config package's strict decoder.
type fakeConfig struct {
	values map[string]any
	err    error
}

func (c fakeConfig) Decode(v any) error {
	if c.err != nil {
		return c.err
	}
	o := v.(*Options)
	if ttl, ok := c.values["ttl"]; ok {
		o.TTL = ttl.(time.Duration)
	}
	if n, ok := c.values["max_size"]; ok {
		o.MaxSize = n.(int)
	}
	return nil
}

func (fakeConfig) Path() string      { return "layers[0]" }
func (fakeConfig) Namespace() string { return "" }

// Maintenance that comes rarely runs on the goroutine that triggers it, so
// that an idle process's reads do not wake a thread; maintenance that comes
// often goes to a goroutine of its own.
func TestMaintain_InlineOnlyWhenRare(t *testing.T) {
	l := newLayer(t, Options{})
	// As if the last inline run were long ago.
	l.lastInline.Store(int64(time.Since(l.start) - time.Hour))

	ranHere := false
	l.maintain(func() { ranHere = true })
	if !ranHere {
		t.Fatal("maintenance after a quiet spell did not run on the calling goroutine")
	}

	// Within the gap (here: as if the last inline run were just now, on a
	// machine however slow), maintenance must not hold up its caller: this
	// run blocks until released, which only a goroutine of its own
	// survives.
	l.lastInline.Store(int64(time.Since(l.start) + time.Hour))
	release := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		l.maintain(func() { <-release })
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("maintenance soon after an inline run ran on the calling goroutine")
	}
	close(release)
	l.tasks.Wait()
}

// Regression: a write racing with Close could start a maintenance
// goroutine while Close waited for them, and the WaitGroup panicked
// ("reused before previous Wait has returned").
func TestClose_WhileWritesStillRun(t *testing.T) {
	ctx := context.Background()
	for range 50 {
		l, err := New(Options{MaxSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var writers sync.WaitGroup
		for w := range 2 {
			writers.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_ = l.Set(ctx, strconv.Itoa(w*1_000_000+i%500), &driver.Entry{Value: i})
				}
			})
		}
		time.Sleep(time.Millisecond)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		writers.Wait()
	}
}
