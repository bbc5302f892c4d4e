package drivertest

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

func (s *suite) testRoundTrip(t *testing.T, h *harness) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	manyTags := make([]string, 100)
	for i := range manyTags {
		manyTags[i] = "tag-" + strconv.Itoa(i)
	}
	type roundTrip struct {
		name, key string
		e         *driver.Entry
	}
	var cases []roundTrip
	add := func(name, key string, data []byte, fill func(e *driver.Entry)) {
		e := h.entry(data)
		if fill != nil {
			fill(e)
		}
		cases = append(cases, roundTrip{name, key, e})
	}
	add("all fields", "user:42", []byte(`{"name":"Ada"}`), func(e *driver.Entry) {
		e.Codec = "json"
		e.StaleAt = unixNano(30 * time.Minute)
		e.ExpiresAt = unixNano(time.Hour)
		e.Tags = []string{"users", "org:{7} with space"}
	})
	add("negative", "user:404", nil, func(e *driver.Entry) {
		e.Codec = "json"
		e.StaleAt = unixNano(time.Minute)
		e.ExpiresAt = unixNano(2 * time.Minute)
		e.Tags = []string{"users"}
		e.Negative = true
	})
	add("no expiry", "config", []byte("v"), nil)
	add("stale time without expiry", "stale-only", []byte("s"), func(e *driver.Entry) {
		e.StaleAt = unixNano(time.Minute)
	})
	add("far future expiry", "far", []byte("f"), func(e *driver.Entry) {
		e.ExpiresAt = unixNano(10 * 365 * 24 * time.Hour)
	})
	add("nil data", "nil-data", nil, nil)
	add("empty data", "empty-data", []byte{}, nil)
	add("every byte value", "binary", allBytes, nil)
	add("100 tags", "many-tags", []byte("t"), func(e *driver.Entry) { e.Tags = manyTags })
	add("unusual key", "ключ/🔑 with spaces:and{braces}", []byte("u"), nil)
	add("long key", strings.Repeat("k", 512), []byte("l"), nil)

	snapshots := make([]*driver.Entry, len(cases))
	for i, c := range cases {
		snapshots[i] = clone(c.e)
		h.set(c.key, c.e)
	}
	// Read only after every write, so that keys overwriting one another
	// show up too.
	for i, c := range cases {
		if d := diff(snapshots[i], h.get(c.key)); d != "" {
			t.Errorf("%s: Get(%q) after Set: %s", c.name, c.key, d)
		}
		if d := diff(snapshots[i], c.e); d != "" {
			t.Errorf("%s: the entry given to Set was modified: %s", c.name, d)
		}
	}
}

func (s *suite) testInProcessIdentity(t *testing.T, h *harness) {
	if !h.inProc {
		t.Skip("the layer is not driver.InProcess")
	}
	e := h.entry([]byte("shared"))
	h.set("k", e)
	if got := h.get("k"); got != e {
		t.Errorf("Get returned %p, want the entry given to Set (%p): in-process layers keep the pointer so that a hit costs no copy", got, e)
	}
}

// testPayloadOwned writes into the payloads a layer hands out, by Get and
// by GetMany: the caller owns them (driver.Entry), so the layer's own copy
// must not change. The cache gives such bytes to its callers as they are.
func (s *suite) testPayloadOwned(t *testing.T, h *harness) {
	if h.inProc {
		t.Skip("in-process layers hold values, not payloads")
	}
	want := []byte("a payload the caller may write into")
	h.set("k", h.entry(want))
	scribble := func(how string, e *driver.Entry) {
		if e == nil || len(e.Payload) == 0 {
			t.Fatalf("%s returned no payload for a key just set: %+v", how, e)
		}
		for i := range e.Payload {
			e.Payload[i] = 'X'
		}
	}
	scribble("Get", h.get("k"))
	h.expect("k", h.entry(want))
	if _, ok := h.l.(driver.BatchGetter); ok {
		scribble("GetMany", h.getMany([]string{"k"})[0])
		h.expect("k", h.entry(want))
	}
}

func (s *suite) testMiss(t *testing.T, h *harness) {
	e, err := h.l.Get(h.ctx, "never-set")
	if e != nil || err != nil {
		t.Errorf("Get of a key never set = %v, %v; want nil, nil", e, err)
	}
	h.set("k", h.entry([]byte("v")))
	h.del("k")
	e, err = h.l.Get(h.ctx, "k")
	if e != nil || err != nil {
		t.Errorf("Get of a deleted key = %v, %v; want nil, nil", e, err)
	}
}

func (s *suite) testOverwrite(t *testing.T, h *harness) {
	first := h.entry([]byte("first"))
	first.StaleAt = unixNano(time.Minute)
	first.ExpiresAt = unixNano(time.Hour)
	first.Tags = []string{"a", "b"}

	second := h.entry([]byte("second, longer"))
	second.Codec = "other"
	second.Negative = true

	third := h.entry(nil)
	third.ExpiresAt = unixNano(2 * time.Hour)
	third.Tags = []string{"c"}

	for _, e := range []*driver.Entry{first, second, third} {
		h.set("k", e)
		h.expect("k", e)
	}
}

func (s *suite) testDistinctKeys(t *testing.T, h *harness) {
	// Keys that a driver adding a prefix, trimming or folding case could
	// confuse.
	keys := []string{"k", "k:", "k:1", "K", "k ", " k", "kk", "prefix:k"}
	for _, k := range keys {
		h.set(k, h.entry([]byte("value of "+k)))
	}
	for _, k := range keys {
		h.expect(k, h.entry([]byte("value of "+k)))
	}
	h.del("k")
	h.expect("k", nil)
	for _, k := range keys[1:] {
		h.expect(k, h.entry([]byte("value of "+k)))
	}
}

func (s *suite) testLarge(t *testing.T, h *harness) {
	const size = 1 << 20
	random := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(random)
	repetitive := bytes.Repeat([]byte("layercache "), size/11+1)[:size]
	for name, data := range map[string][]byte{"random": random, "repetitive": repetitive} {
		e := h.entry(data)
		e.ExpiresAt = unixNano(time.Hour)
		e.Tags = []string{"large"}
		want := clone(e)
		h.set(name, e)
		if d := diff(want, h.get(name)); d != "" {
			t.Errorf("1 MiB %s value: %s", name, d)
		}
	}
}

func (s *suite) testDeleteAbsent(t *testing.T, h *harness) {
	if err := h.l.Delete(h.ctx, "absent"); err != nil {
		t.Errorf("Delete of an absent key: %v", err)
	}
	if err := h.l.Delete(h.ctx, "absent", "also-absent"); err != nil {
		t.Errorf("Delete of two absent keys: %v", err)
	}
	if err := h.l.Delete(h.ctx); err != nil {
		t.Errorf("Delete of no keys: %v", err)
	}
}

func (s *suite) testDeleteMany(t *testing.T, h *harness) {
	keys := []string{"k1", "k2", "k3", "k4", "k5"}
	for _, k := range keys {
		h.set(k, h.entry([]byte(k)))
	}
	h.del("k1", "k3", "absent", "k5", "k3")
	for _, k := range keys {
		var want *driver.Entry
		if k == "k2" || k == "k4" {
			want = h.entry([]byte(k))
		}
		h.expect(k, want)
	}
}
