package drivertest

import (
	"slices"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

func (s *suite) testGetMany(t *testing.T, h *harness) {
	bg, ok := h.l.(driver.BatchGetter)
	if !ok {
		t.Skip("the layer is not a driver.BatchGetter")
	}
	a := h.entry([]byte("a"))
	a.Tags = []string{"x"}
	b := h.entry(nil)
	b.Negative = true
	b.ExpiresAt = unixNano(time.Hour)
	h.set("a", a)
	h.set("b", b)
	h.set("deleted", h.entry([]byte("d")))
	h.del("deleted")

	if es, err := bg.GetMany(h.ctx, nil); err != nil || len(es) != 0 {
		t.Errorf("GetMany of no keys = %d entries, %v; want none, nil", len(es), err)
	}
	// Order differs from the writes', a key repeats, misses sit between hits.
	keys := []string{"b", "absent", "a", "deleted", "b", "another-absent"}
	es, err := bg.GetMany(h.ctx, keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(es) != len(keys) {
		t.Fatalf("GetMany returned %d entries for %d keys", len(es), len(keys))
	}
	for i, k := range keys {
		if d := diff(h.get(k), es[i]); d != "" {
			t.Errorf("GetMany[%d] (%q) disagrees with Get: %s", i, k, d)
		}
	}
}

func (s *suite) testSetMany(t *testing.T, h *harness) {
	bs, ok := h.l.(driver.BatchSetter)
	if !ok {
		t.Skip("the layer is not a driver.BatchSetter")
	}
	if err := bs.SetMany(h.ctx, nil, nil); err != nil {
		t.Errorf("SetMany of no entries: %v", err)
	}
	h.set("overwritten", h.entry([]byte("old")))
	h.set("expired-over-live", h.entry([]byte("old")))

	// What Set, the fallback, stores for each of these is known from the
	// other tests; SetMany must store the same.
	plain := h.entry([]byte("plain"))
	tagged := h.entry([]byte("tagged"))
	tagged.Tags = []string{"t1", "t2"}
	tagged.StaleAt = unixNano(time.Minute)
	tagged.ExpiresAt = unixNano(time.Hour)
	negative := h.entry(nil)
	negative.Negative = true
	newer := h.entry([]byte("new"))
	expired := h.entry([]byte("expired"))
	expired.ExpiresAt = unixNano(-time.Second)

	keys := []string{"plain", "tagged", "negative", "overwritten", "expired-over-live"}
	entries := []*driver.Entry{plain, tagged, negative, newer, expired}
	wants := []*driver.Entry{plain, tagged, negative, newer, nil}
	if err := bs.SetMany(h.ctx, keys, entries); err != nil {
		t.Fatalf("SetMany: %v", err)
	}
	for i, k := range keys {
		h.expect(k, wants[i])
	}
}

func (s *suite) testClear(t *testing.T, h *harness) {
	c, ok := h.l.(driver.Clearer)
	if !ok {
		t.Skip("the layer is not a driver.Clearer")
	}
	keys := []string{"a", "b", "c"}
	for _, k := range keys {
		e := h.entry([]byte(k))
		e.Tags = []string{"t"}
		h.set(k, e)
	}
	if err := c.Clear(h.ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for _, k := range keys {
		h.expect(k, nil)
	}
	// The layer stays usable.
	e := h.entry([]byte("after"))
	h.set("a", e)
	h.expect("a", e)
	if err := c.Clear(h.ctx); err != nil {
		t.Errorf("Clear of a layer with one entry: %v", err)
	}
	if err := c.Clear(h.ctx); err != nil {
		t.Errorf("Clear of an empty layer: %v", err)
	}
}

func (s *suite) testInvalidateTags(t *testing.T, h *harness) {
	ti, ok := h.l.(driver.TagInvalidator)
	if !ok {
		t.Skip("the layer is not a driver.TagInvalidator")
	}
	tagged := map[string][]string{
		"only-t1":   {"t1"},
		"only-t2":   {"t2"},
		"t1-and-t2": {"t1", "t2"},
		"untagged":  nil,
		"only-t3":   {"t3"},
		"t1-prefix": {"t1x", "xt1"},
		"braces":    {"org:{7}"},
	}
	entries := map[string]*driver.Entry{}
	for k, tags := range tagged {
		e := h.entry([]byte(k))
		e.Tags = tags
		e.ExpiresAt = unixNano(time.Hour)
		entries[k] = e
		h.set(k, e)
	}
	expectLeft := func(step string, left ...string) {
		t.Helper()
		for k := range tagged {
			want := entries[k]
			if !slices.Contains(left, k) {
				want = nil
			}
			if d := diff(want, h.get(k)); d != "" {
				t.Errorf("after %s: Get(%q): %s", step, k, d)
			}
		}
	}

	for _, tags := range [][]string{nil, {"absent"}} {
		if err := ti.InvalidateTags(h.ctx, tags...); err != nil {
			t.Errorf("InvalidateTags(%q): %v", tags, err)
		}
	}
	expectLeft("invalidating no tags", "only-t1", "only-t2", "t1-and-t2", "untagged", "only-t3", "t1-prefix", "braces")

	if err := ti.InvalidateTags(h.ctx, "t1"); err != nil {
		t.Fatalf("InvalidateTags(t1): %v", err)
	}
	expectLeft("InvalidateTags(t1)", "only-t2", "untagged", "only-t3", "t1-prefix", "braces")

	if err := ti.InvalidateTags(h.ctx, "t2", "org:{7}"); err != nil {
		t.Fatalf("InvalidateTags(t2, org:{7}): %v", err)
	}
	expectLeft("InvalidateTags(t2, org:{7})", "untagged", "only-t3", "t1-prefix")

	// A key written again with the tag after an invalidation is tagged anew.
	h.set("only-t1", entries["only-t1"])
	if err := ti.InvalidateTags(h.ctx, "t1"); err != nil {
		t.Fatalf("second InvalidateTags(t1): %v", err)
	}
	expectLeft("a second InvalidateTags(t1)", "untagged", "only-t3", "t1-prefix")
}

func (s *suite) testPing(t *testing.T, h *harness) {
	p, ok := h.l.(driver.Pinger)
	if !ok {
		t.Skip("the layer is not a driver.Pinger")
	}
	if err := p.Ping(h.ctx); err != nil {
		t.Errorf("Ping of a working layer: %v", err)
	}
}

func (s *suite) testName(t *testing.T, h *harness) {
	n, ok := h.l.(driver.Namer)
	if !ok {
		t.Skip("the layer is not a driver.Namer")
	}
	if n.Name() == "" {
		t.Error("Name() is empty")
	}
}

func (s *suite) testTimeout(t *testing.T, h *harness) {
	to, ok := h.l.(driver.Timeouter)
	if !ok {
		t.Skip("the layer is not a driver.Timeouter")
	}
	if d := to.Timeout(); d <= 0 {
		t.Errorf("Timeout() = %v, want > 0", d)
	}
}

func (s *suite) testAs(t *testing.T, h *harness) {
	a, ok := h.l.(driver.Aser)
	if !ok {
		t.Skip("the layer is not a driver.Aser")
	}
	type unknown struct{}
	var target *unknown
	if a.As(&target) {
		t.Error("As(**unknown) = true for a type the layer cannot wrap")
	}
	if a.As(nil) {
		t.Error("As(nil) = true")
	}
}

func (s *suite) testDeleteIfHolds(t *testing.T, h *harness) {
	cd, ok := h.l.(driver.ConditionalDeleter)
	if !ok {
		t.Skip("the layer is not a driver.ConditionalDeleter")
	}
	mine := h.entry([]byte("mine"))
	newer := h.entry([]byte("newer"))
	h.set("k", newer)
	if err := cd.DeleteIfHolds(h.ctx, "k", mine); err != nil {
		t.Fatalf("DeleteIfHolds of an entry the layer does not hold: %v", err)
	}
	h.expect("k", newer) // someone else's entry survives
	if err := cd.DeleteIfHolds(h.ctx, "absent", mine); err != nil {
		t.Fatalf("DeleteIfHolds of an absent key: %v", err)
	}
	h.set("k", mine)
	if err := cd.DeleteIfHolds(h.ctx, "k", mine); err != nil {
		t.Fatalf("DeleteIfHolds: %v", err)
	}
	h.expect("k", nil)
}

func (s *suite) testInvalidateAllTags(t *testing.T, h *harness) {
	ai, ok := h.l.(driver.AllTagsInvalidator)
	if !ok {
		t.Skip("the layer is not a driver.AllTagsInvalidator")
	}
	tagged := map[string][]string{"both": {"x", "y"}, "x-only": {"x"}, "y-only": {"y"}, "more": {"z", "y", "x"}, "none": nil}
	entries := map[string]*driver.Entry{}
	for k, tags := range tagged {
		e := h.entry([]byte(k))
		e.Tags = tags
		entries[k] = e
		h.set(k, e)
	}
	if err := ai.InvalidateAllTags(h.ctx, "x", "y"); err != nil {
		t.Fatalf("InvalidateAllTags: %v", err)
	}
	for k, e := range entries {
		if k == "both" || k == "more" {
			h.expect(k, nil)
		} else {
			h.expect(k, e)
		}
	}
	if err := ai.InvalidateAllTags(h.ctx, "never-used", "x"); err != nil {
		t.Fatalf("InvalidateAllTags of a tag nothing carries: %v", err)
	}
	h.expect("x-only", entries["x-only"])
}
