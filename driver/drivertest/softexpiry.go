package drivertest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// staleCase is an entry the soft expiry tests write, and the entry as
// written (a deep copy), to compare against afterwards.
type staleCase struct {
	e, orig *driver.Entry
}

// staleFixture writes an entry per key with every kind of freshness soft
// expiry must handle, and returns them.
func (h *harness) staleFixture(keys map[string][]string) map[string]staleCase {
	h.t.Helper()
	cases := map[string]staleCase{}
	i := 0
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		e := h.entry([]byte("v:" + k))
		e.Tags = keys[k]
		// Rotate through the shapes of freshness, so that each test meets
		// them all whichever keys it expires.
		switch i % 5 {
		case 0: // fresh for a while, then stale, then gone
			e.StaleAt = unixNano(30 * time.Minute)
			e.ExpiresAt = unixNano(time.Hour)
		case 1: // fresh until it expires
			e.ExpiresAt = unixNano(time.Hour)
			e.StaleAt = e.ExpiresAt
		case 2: // never stale, never expires
		case 3: // goes stale, never expires
			e.StaleAt = unixNano(time.Minute)
		case 4: // already stale
			e.StaleAt = unixNano(-time.Minute)
			e.ExpiresAt = unixNano(time.Hour)
		}
		if i%7 == 6 {
			e.Value, e.Payload = nil, nil
			e.Negative = true
		}
		i++
		cases[k] = staleCase{e: e, orig: clone(e)}
		h.set(k, e)
	}
	return cases
}

// expectStale checks the entries after a soft expiry that ran between
// before and after (Unix nanoseconds): those of stale are stale from a
// time within the call (or from their own earlier StaleAt) and otherwise
// unchanged; every other one is exactly as written. None of the entries
// given to Set was modified.
func (h *harness) expectStale(step string, cases map[string]staleCase, before, after int64, stale ...string) {
	h.t.Helper()
	for _, k := range slices.Sorted(maps.Keys(cases)) {
		c := cases[k]
		if d := diff(c.orig, c.e); d != "" {
			h.t.Errorf("after %s: the entry given to Set(%q) was modified: %s", step, k, d)
		}
		got := h.get(k)
		if got == nil {
			h.t.Errorf("after %s: Get(%q) missed; soft expiry must keep the entry", step, k)
			continue
		}
		want := clone(c.orig)
		if slices.Contains(stale, k) {
			switch {
			case want.StaleAt != 0 && want.StaleAt <= before:
				// Already stale: it keeps its StaleAt.
			case got.StaleAt < before || got.StaleAt > after:
				h.t.Errorf("after %s: Get(%q).StaleAt is %v from the call's start, want within the call (%v long)",
					step, k, time.Duration(got.StaleAt-before), time.Duration(after-before))
				continue
			default:
				want.StaleAt = got.StaleAt
			}
		}
		if d := diff(want, got); d != "" {
			h.t.Errorf("after %s: Get(%q): %s", step, k, d)
		}
	}
}

// now returns the time in the unit of Entry.StaleAt.
func now() int64 { return time.Now().UnixNano() }

func (s *suite) testExpireKeys(t *testing.T, h *harness) {
	ex, ok := h.l.(driver.Expirer)
	if !ok {
		t.Skip("the layer is not a driver.Expirer")
	}
	keys := map[string][]string{}
	for _, k := range []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "other0", "other1", "other2"} {
		keys[k] = []string{"t"}
	}
	cases := h.staleFixture(keys)
	if err := ex.Expire(h.ctx); err != nil {
		t.Errorf("Expire of no keys: %v", err)
	}
	target := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "absent", "k0"}
	before := now()
	if err := ex.Expire(h.ctx, target...); err != nil {
		t.Fatalf("Expire(%q): %v", target, err)
	}
	after := now()
	h.expectStale("Expire", cases, before, after, target...)
	h.expect("absent", nil)

	// A second soft expiry finds the entries stale and keeps their StaleAt.
	first := map[string]*driver.Entry{}
	for k := range cases {
		first[k] = h.get(k)
	}
	if err := ex.Expire(h.ctx, target...); err != nil {
		t.Fatalf("second Expire: %v", err)
	}
	for k, want := range first {
		h.expect(k, want)
	}

	// The entries are still indexed by their tags.
	if ti, ok := h.l.(driver.TagInvalidator); ok {
		if err := ti.InvalidateTags(h.ctx, "t"); err != nil {
			t.Fatalf("InvalidateTags(t): %v", err)
		}
		for k := range cases {
			h.expect(k, nil)
		}
	}
}

func (s *suite) testExpireTags(t *testing.T, h *harness) {
	ex, ok := h.l.(driver.Expirer)
	if !ok {
		t.Skip("the layer is not a driver.Expirer")
	}
	cases := h.staleFixture(map[string][]string{
		"only-t1":   {"t1"},
		"only-t2":   {"t2"},
		"t1-and-t2": {"t1", "t2"},
		"untagged":  nil,
		"only-t3":   {"t3"},
		"t1-prefix": {"t1x", "xt1"},
		"braces":    {"org:{7}"},
		"t1-second": {"t3", "t1"},
	})
	for _, tags := range [][]string{nil, {"absent"}} {
		if err := ex.ExpireTags(h.ctx, tags...); err != nil {
			t.Errorf("ExpireTags(%q): %v", tags, err)
		}
	}
	h.expectStale("expiring no tags", cases, 0, 0)

	before := now()
	if err := ex.ExpireTags(h.ctx, "t1"); err != nil {
		t.Fatalf("ExpireTags(t1): %v", err)
	}
	after := now()
	h.expectStale("ExpireTags(t1)", cases, before, after, "only-t1", "t1-and-t2", "t1-second")

	// Record what the first call did, then expire more: entries already
	// stale keep their StaleAt.
	for k, c := range cases {
		if got := h.get(k); got != nil {
			c.orig = clone(got)
			c.e = got
			cases[k] = c
		}
	}
	before = now()
	if err := ex.ExpireTags(h.ctx, "t2", "org:{7}"); err != nil {
		t.Fatalf("ExpireTags(t2, org:{7}): %v", err)
	}
	after = now()
	h.expectStale("ExpireTags(t2, org:{7})", cases, before, after, "only-t2", "t1-and-t2", "braces")

	// A tag's entries can still be invalidated after going stale.
	if ti, ok := h.l.(driver.TagInvalidator); ok {
		if err := ti.InvalidateTags(h.ctx, "t1"); err != nil {
			t.Fatalf("InvalidateTags(t1): %v", err)
		}
		for _, k := range []string{"only-t1", "t1-and-t2", "t1-second"} {
			h.expect(k, nil)
		}
	}
}

func (s *suite) testExpirePrefix(t *testing.T, h *harness) {
	ex, ok := h.l.(driver.Expirer)
	if !ok {
		t.Skip("the layer is not a driver.Expirer")
	}
	keys := map[string][]string{}
	for k := range prefixKeys {
		keys[k] = []string{"t"}
	}
	cases := h.staleFixture(keys)
	if err := ex.ExpirePrefix(h.ctx, "absent:"); err != nil {
		t.Fatalf("ExpirePrefix(absent:): %v", err)
	}
	h.expectStale("ExpirePrefix(absent:)", cases, 0, 0)

	var matched []string
	for k, m := range prefixKeys {
		if m {
			matched = append(matched, k)
		}
	}
	before := now()
	if err := ex.ExpirePrefix(h.ctx, "user:"); err != nil {
		t.Fatalf("ExpirePrefix(user:): %v", err)
	}
	after := now()
	h.expectStale("ExpirePrefix(user:)", cases, before, after, matched...)
}

// testExpiredStillExpires checks that soft expiry keeps an entry's deadline:
// the entry goes at its ExpiresAt, not later.
func (s *suite) testExpiredStillExpires(t *testing.T, h *harness) {
	ex, ok := h.l.(driver.Expirer)
	if !ok {
		t.Skip("the layer is not a driver.Expirer")
	}
	e := h.entry([]byte("short"))
	e.Tags = []string{"t"}
	e.ExpiresAt = unixNano(shortLife)
	e.StaleAt = e.ExpiresAt
	h.set("short", e)
	if err := ex.Expire(h.ctx, "short"); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	if got := h.get("short"); got != nil && got.ExpiresAt != e.ExpiresAt {
		t.Fatalf("Expire changed ExpiresAt by %v", time.Duration(got.ExpiresAt-e.ExpiresAt))
	}
	h.waitGone("short", e.ExpiresAt)
}
