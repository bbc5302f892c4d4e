package disk

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

func TestExpire_SurvivesReopenWithTagsAndDeadline(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := New(Options{Dir: dir, TTL: time.Hour, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	noExpiry := &driver.Entry{Payload: []byte("a"), Codec: "test", Tags: []string{"t"}}
	ownExpiry := entry("b", 10*time.Minute)
	ownExpiry.Tags = []string{"t", "u"}
	mustSet(t, l, "a", noExpiry)
	mustSet(t, l, "b", ownExpiry)
	deadlines := map[string]int64{"a": l.idx.items["a"].deadline, "b": l.idx.items["b"].deadline}
	size := l.Size()

	before := time.Now().UnixNano()
	if err := l.ExpireTags(ctx, "t"); err != nil {
		t.Fatalf("ExpireTags: %v", err)
	}
	after := time.Now().UnixNano()
	for k, d := range deadlines {
		if got := l.idx.items[k].deadline; got != d {
			t.Errorf("%s: deadline moved by %v", k, time.Duration(got-d))
		}
	}
	if got := l.Size(); got != size {
		t.Errorf("Size() = %d after soft expiry, was %d", got, size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLayer(t, Options{Dir: dir, TTL: time.Hour})
	for k, want := range map[string]*driver.Entry{"a": noExpiry, "b": ownExpiry} {
		got := mustGet(t, l, k)
		if got == nil {
			t.Fatalf("Get(%q) after reopening: miss", k)
		}
		if got.StaleAt < before || got.StaleAt > after {
			t.Errorf("Get(%q).StaleAt is not within the ExpireTags call", k)
		}
		if got.ExpiresAt != want.ExpiresAt || string(got.Payload) != string(want.Payload) {
			t.Errorf("Get(%q) = %+v, want the entry written with a new StaleAt", k, got)
		}
		// nutsdb keeps whole seconds: at most one more than before.
		if d := l.idx.items[k].deadline - deadlines[k]; d > int64(time.Second) {
			t.Errorf("%s: deadline after reopening is %v later than written", k, time.Duration(d))
		}
	}
	if err := l.InvalidateTags(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, l, "b") != nil || mustGet(t, l, "a") == nil {
		t.Error("InvalidateTags(u) after soft expiry and reopening did not remove exactly the entry tagged u")
	}
}

func TestInvalidatePrefix_DoneContextStopsIt(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	for i := range 10 {
		mustSet(t, l, "p:"+strconv.Itoa(i), entry("v", time.Hour))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, f := range map[string]func() error{
		"InvalidatePrefix": func() error { return l.InvalidatePrefix(ctx, "p:") },
		"ExpirePrefix":     func() error { return l.ExpirePrefix(ctx, "p:") },
		"Expire":           func() error { return l.Expire(ctx, "p:1") },
	} {
		if err := f(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	if l.Len() != 10 || mustGet(t, l, "p:1").StaleAt != 0 {
		t.Error("an operation with a cancelled context changed the layer")
	}
}

func TestLifecycle_ClosedLayerIsErrClosed(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	mustSet(t, l, "p:1", entry("v", time.Hour))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, err := range map[string]error{
		"InvalidatePrefix": l.InvalidatePrefix(ctx, "p:"),
		"Expire":           l.Expire(ctx, "p:1"),
		"ExpireTags":       l.ExpireTags(ctx, "t"),
		"ExpirePrefix":     l.ExpirePrefix(ctx, "p:"),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed layer = %v, want ErrClosed", name, err)
		}
	}
}
