package drivertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// hangAfter is how long an operation under a done context may take before
// the suite calls it hung. It only bounds a failure; passing runs never wait
// for it.
const hangAfter = 10 * time.Second

func (s *suite) testCorrupt(t *testing.T, h *harness) {
	if s.opts.Corrupt == nil {
		t.Skip("Options.Corrupt is nil: the layer holds Go values")
	}
	good := h.entry([]byte("good"))
	h.set("good", good)
	h.set("overwritten", h.entry([]byte("valid before")))
	s.opts.Corrupt(t, "overwritten")
	s.opts.Corrupt(t, "fresh")

	for _, key := range []string{"overwritten", "fresh"} {
		e, err := noPanic(t, "Get("+key+")", func() (*driver.Entry, error) { return h.l.Get(h.ctx, key) })
		if e != nil {
			t.Errorf("Get(%q) of corrupt bytes returned an entry %s (error %v); want an error or a miss", key, describe(e), err)
		}
	}
	if bg, ok := h.l.(driver.BatchGetter); ok {
		keys := []string{"good", "overwritten", "fresh"}
		es, err := noPanic(t, "GetMany", func() ([]*driver.Entry, error) { return bg.GetMany(h.ctx, keys) })
		if err == nil {
			if len(es) != len(keys) {
				t.Fatalf("GetMany returned %d entries for %d keys", len(es), len(keys))
			}
			if d := diff(good, es[0]); d != "" {
				t.Errorf("GetMany next to corrupt keys: good key: %s", d)
			}
			for i, e := range es[1:] {
				if e != nil {
					t.Errorf("GetMany returned an entry for corrupt key %q: %s", keys[i+1], describe(e))
				}
			}
		}
	}
	// A corrupt value must not block the key: the next write replaces it.
	h.expect("good", good)
	fixed := h.entry([]byte("fixed"))
	h.set("overwritten", fixed)
	h.expect("overwritten", fixed)
}

// noPanic runs f, turning a panic into a test failure.
func noPanic[T any](t *testing.T, what string, f func() (T, error)) (v T, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", what, r)
		}
	}()
	return f()
}

// namedOp is one call of the done-context test; it returns an error when
// the layer answered wrongly (an error from the layer itself is fine).
type namedOp struct {
	name string
	call func(ctx context.Context) error
}

func (s *suite) testDoneContext(t *testing.T, h *harness) {
	stored := h.entry([]byte("stored"))
	bg := context.Background()

	ops := []namedOp{
		{"Get", func(ctx context.Context) error {
			e, err := h.l.Get(ctx, "k")
			if err == nil {
				if d := diff(stored, e); d != "" {
					return fmt.Errorf("succeeded with a wrong result: %s", d)
				}
			}
			return nil
		}},
		{"Set", func(ctx context.Context) error {
			e := h.entry([]byte("written under a done context"))
			if h.l.Set(ctx, "set", e) != nil {
				return nil
			}
			// It claims success, so the entry must be there.
			got, err := h.l.Get(bg, "set")
			if err != nil {
				return fmt.Errorf("succeeded, but then Get: %v", err)
			}
			if d := diff(e, got); d != "" {
				return fmt.Errorf("succeeded, but then Get: %s", d)
			}
			return nil
		}},
		{"Delete", func(ctx context.Context) error { _ = h.l.Delete(ctx, "absent"); return nil }},
	}
	if l, ok := h.l.(driver.BatchGetter); ok {
		ops = append(ops, namedOp{"GetMany", func(ctx context.Context) error {
			es, err := l.GetMany(ctx, []string{"k", "absent"})
			if err == nil && len(es) != 2 {
				return fmt.Errorf("succeeded with %d entries for 2 keys", len(es))
			}
			return nil
		}})
	}
	if l, ok := h.l.(driver.BatchSetter); ok {
		ops = append(ops, namedOp{"SetMany", func(ctx context.Context) error {
			_ = l.SetMany(ctx, []string{"many"}, []*driver.Entry{h.entry([]byte("m"))})
			return nil
		}})
	}
	if l, ok := h.l.(driver.TagInvalidator); ok {
		ops = append(ops, namedOp{"InvalidateTags", func(ctx context.Context) error {
			_ = l.InvalidateTags(ctx, "absent-tag")
			return nil
		}})
	}
	if l, ok := h.l.(driver.Pinger); ok {
		ops = append(ops, namedOp{"Ping", func(ctx context.Context) error { _ = l.Ping(ctx); return nil }})
	}
	// Clear goes last: it empties what the other calls read.
	if l, ok := h.l.(driver.Clearer); ok {
		ops = append(ops, namedOp{"Clear", func(ctx context.Context) error { _ = l.Clear(ctx); return nil }})
	}

	cancelled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"cancelled", cancelled}, {"deadline exceeded", expired}} {
		h.set("k", stored)
		for _, op := range ops {
			done := make(chan error, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- fmt.Errorf("panicked: %v", r)
					}
				}()
				done <- op.call(c.ctx)
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s under a %s context: %v", op.name, c.name, err)
				}
			case <-time.After(hangAfter):
				t.Fatalf("%s under a %s context did not return within %v", op.name, c.name, hangAfter)
			}
		}
	}
}
