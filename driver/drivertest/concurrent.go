package drivertest

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// versioned builds the entry of write number n. Every field derives from n,
// so an entry assembled from two writes is recognised.
func (h *harness) versioned(base int64, n int) *driver.Entry {
	s := strconv.Itoa(n)
	e := h.entry(bytes.Repeat([]byte(s+";"), 1+n%7))
	if !h.inProc {
		e.Codec = "codec-" + s
	}
	e.StaleAt = base + int64(n)
	e.ExpiresAt = base + int64(time.Hour) + int64(n)
	e.Tags = []string{"t" + s, "all"}[:1+n%2]
	e.Negative = n%3 == 0
	return e
}

// checkVersioned reports an entry that is not exactly one write's.
func (h *harness) checkVersioned(base int64, writes int, key string, got *driver.Entry) bool {
	if got == nil {
		return true
	}
	n := got.StaleAt - base
	if n < 0 || n >= int64(writes) {
		h.t.Errorf("Get(%q) returned StaleAt %d, which no write used", key, got.StaleAt)
		return false
	}
	if d := diff(h.versioned(base, int(n)), got); d != "" {
		h.t.Errorf("Get(%q) returned a torn entry (StaleAt of write %d): %s", key, n, d)
		return false
	}
	return true
}

func (s *suite) testConcurrent(t *testing.T, h *harness) {
	const goroutines = 8
	ops := 250
	if h.inProc {
		ops = 2000
	}
	keys := []string{"c0", "c1", "c2", "c3"}
	base := time.Now().UnixNano()
	writes := goroutines * ops
	// Each goroutine writes distinct numbers so that every entry is built
	// once and never shared between writers.
	var next atomic.Int64
	bg, batchGet := h.l.(driver.BatchGetter)
	bs, batchSet := h.l.(driver.BatchSetter)
	var failed atomic.Bool

	var wg sync.WaitGroup
	for g := range goroutines {
		rng := rand.New(rand.NewPCG(uint64(g), 7))
		wg.Go(func() {
			for range ops {
				if failed.Load() {
					return
				}
				key := keys[rng.IntN(len(keys))]
				var ok = true
				switch r := rng.IntN(10); {
				case r < 4:
					e, err := h.l.Get(h.ctx, key)
					if err != nil {
						t.Errorf("Get(%q): %v", key, err)
						ok = false
					} else {
						ok = h.checkVersioned(base, writes, key, e)
					}
				case r < 7:
					n := int(next.Add(1)) - 1
					if err := h.l.Set(h.ctx, key, h.versioned(base, n)); err != nil {
						t.Errorf("Set(%q): %v", key, err)
						ok = false
					}
				case r < 8:
					if err := h.l.Delete(h.ctx, key); err != nil {
						t.Errorf("Delete(%q): %v", key, err)
						ok = false
					}
				case r < 9 && batchGet:
					es, err := bg.GetMany(h.ctx, keys)
					if err != nil || len(es) != len(keys) {
						t.Errorf("GetMany: %d entries, %v", len(es), err)
						ok = false
						break
					}
					for i, e := range es {
						ok = ok && h.checkVersioned(base, writes, keys[i], e)
					}
				case batchSet:
					n := int(next.Add(1)) - 1
					if err := bs.SetMany(h.ctx, []string{key}, []*driver.Entry{h.versioned(base, n)}); err != nil {
						t.Errorf("SetMany: %v", err)
						ok = false
					}
				default:
					e, err := h.l.Get(h.ctx, key)
					if err != nil {
						t.Errorf("Get(%q): %v", key, err)
						ok = false
					} else {
						ok = h.checkVersioned(base, writes, key, e)
					}
				}
				if !ok {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		h.checkVersioned(base, writes, k, h.get(k))
	}
}
