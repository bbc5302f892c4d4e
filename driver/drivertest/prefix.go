package drivertest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// globPrefix is a prefix made of the characters that glob patterns (Redis
// SCAN MATCH, path.Match) treat specially, so that a layer which puts the
// prefix in a pattern unquoted matches keys it must not.
const globPrefix = `g*[x]?\`

// prefixKeys are the keys of the prefix tests, each with whether it starts
// with "user:", the prefix they invalidate first.
var prefixKeys = map[string]bool{
	"user:1":            true,
	"user:2":            true,
	"user:":             true,
	"user:{7}:braces":   true,
	"user:ключ 🔑":       true,
	"user":              false,
	"users:1":           false,
	"xuser:1":           false,
	"User:1":            false,
	globPrefix + "1":    false,
	globPrefix:          false,
	"gAAxB*":            false, // matched by globPrefix+"*" read as a glob
	"gAAxB*tail":        false,
	"g*[x]?":            false,
	"\x00user:internal": false,
}

func (s *suite) testInvalidatePrefix(t *testing.T, h *harness) {
	pi, ok := h.l.(driver.PrefixInvalidator)
	if !ok {
		t.Skip("the layer is not a driver.PrefixInvalidator")
	}
	entries := map[string]*driver.Entry{}
	for k := range prefixKeys {
		e := h.entry([]byte(k))
		e.ExpiresAt = unixNano(time.Hour)
		if strings.Contains(k, "user") {
			e.Tags = []string{"t"}
		}
		entries[k] = e
		h.set(k, e)
	}
	expectLeft := func(step string, gone func(k string) bool) {
		t.Helper()
		for _, k := range slices.Sorted(maps.Keys(entries)) {
			want := entries[k]
			if gone(k) {
				want = nil
			}
			if d := diff(want, h.get(k)); d != "" {
				t.Errorf("after %s: Get(%q): %s", step, k, d)
			}
		}
	}

	if err := pi.InvalidatePrefix(h.ctx, "absent:"); err != nil {
		t.Fatalf("InvalidatePrefix(absent:): %v", err)
	}
	expectLeft("InvalidatePrefix(absent:)", func(string) bool { return false })

	if err := pi.InvalidatePrefix(h.ctx, "user:"); err != nil {
		t.Fatalf("InvalidatePrefix(user:): %v", err)
	}
	expectLeft("InvalidatePrefix(user:)", func(k string) bool { return prefixKeys[k] })

	if err := pi.InvalidatePrefix(h.ctx, globPrefix); err != nil {
		t.Fatalf("InvalidatePrefix(%q): %v", globPrefix, err)
	}
	expectLeft("InvalidatePrefix of a glob-like prefix", func(k string) bool {
		return prefixKeys[k] || strings.HasPrefix(k, globPrefix)
	})

	// The layer stays usable, tags included: an entry written again after
	// its prefix was invalidated is found by its tag.
	h.set("user:1", entries["user:1"])
	h.expect("user:1", entries["user:1"])
	if ti, ok := h.l.(driver.TagInvalidator); ok {
		if err := ti.InvalidateTags(h.ctx, "t"); err != nil {
			t.Fatalf("InvalidateTags(t): %v", err)
		}
		for _, k := range []string{"user:1", "users:1", "user", "xuser:1"} {
			h.expect(k, nil)
		}
		h.expect("User:1", entries["User:1"])
	}
}

// testInvalidatePrefixMany checks that a layer working in pages (a scan
// cursor, bounded batches) reaches every matching key, and only those.
func (s *suite) testInvalidatePrefixMany(t *testing.T, h *harness) {
	pi, ok := h.l.(driver.PrefixInvalidator)
	if !ok {
		t.Skip("the layer is not a driver.PrefixInvalidator")
	}
	// Within the 1000 entries a layer must hold without evicting.
	const n = 450
	var keys []string
	var entries []*driver.Entry
	for i := range n {
		keys = append(keys, "bulk:"+strconv.Itoa(i), "keep:"+strconv.Itoa(i))
		for range 2 {
			e := h.entry([]byte(strconv.Itoa(i)))
			e.ExpiresAt = unixNano(time.Hour)
			entries = append(entries, e)
		}
	}
	h.setMany(keys, entries)
	if err := pi.InvalidatePrefix(h.ctx, "bulk:"); err != nil {
		t.Fatalf("InvalidatePrefix(bulk:): %v", err)
	}
	got := h.getMany(keys)
	var survivors, lost int
	for i, k := range keys {
		switch {
		case strings.HasPrefix(k, "bulk:") && got[i] != nil:
			survivors++
		case strings.HasPrefix(k, "keep:") && got[i] == nil:
			lost++
		}
	}
	if survivors != 0 || lost != 0 {
		t.Errorf("InvalidatePrefix(bulk:) over %d keys: %d matching keys survived, %d others were lost", 2*n, survivors, lost)
	}
}

// testInvalidateEmptyPrefix checks the one prefix every key starts with.
func (s *suite) testInvalidateEmptyPrefix(t *testing.T, h *harness) {
	pi, ok := h.l.(driver.PrefixInvalidator)
	if !ok {
		t.Skip("the layer is not a driver.PrefixInvalidator")
	}
	keys := []string{"a", "b:1", "user:1"}
	entries := map[string]*driver.Entry{}
	for _, k := range keys {
		e := h.entry([]byte(k))
		e.Tags = []string{"t"}
		entries[k] = e
		h.set(k, e)
	}
	if err := pi.InvalidatePrefix(h.ctx, ""); err != nil {
		// Refusing is allowed; refusing after deleting part is not.
		t.Logf("InvalidatePrefix(\"\") refused: %v", err)
		for _, k := range keys {
			h.expect(k, entries[k])
		}
		return
	}
	for _, k := range keys {
		h.expect(k, nil)
	}
}

// batchSize is how many keys setMany and getMany hand a layer at once:
// what one cache call typically carries, so that a layer's per-operation
// timeout is not put to a test of its own.
const batchSize = 100

// setMany writes the entries, in batches when the layer can.
func (h *harness) setMany(keys []string, entries []*driver.Entry) {
	h.t.Helper()
	if bs, ok := h.l.(driver.BatchSetter); ok {
		for off := 0; off < len(keys); off += batchSize {
			end := min(off+batchSize, len(keys))
			if err := bs.SetMany(h.ctx, keys[off:end], entries[off:end]); err != nil {
				h.t.Fatalf("SetMany: %v", err)
			}
		}
		return
	}
	for i, k := range keys {
		h.set(k, entries[i])
	}
}

// getMany reads the keys, in batches when the layer can.
func (h *harness) getMany(keys []string) []*driver.Entry {
	h.t.Helper()
	es := make([]*driver.Entry, 0, len(keys))
	bg, ok := h.l.(driver.BatchGetter)
	if !ok {
		for _, k := range keys {
			es = append(es, h.get(k))
		}
		return es
	}
	for off := 0; off < len(keys); off += batchSize {
		got, err := bg.GetMany(h.ctx, keys[off:min(off+batchSize, len(keys))])
		if err != nil {
			h.t.Fatalf("GetMany: %v", err)
		}
		es = append(es, got...)
	}
	return es
}
