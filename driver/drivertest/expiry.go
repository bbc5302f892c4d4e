package drivertest

import (
	"testing"
	"time"
)

// shortLife is how long the expiry tests' entries live: long enough that a
// Set reliably completes before, short enough to keep the suite fast.
const shortLife = 150 * time.Millisecond

// waitGone polls key until it misses. It fails if the entry is returned by
// a Get that started once expiresAt had passed, so it never waits much past
// expiresAt, and no exact sleep decides the outcome.
func (h *harness) waitGone(key string, expiresAt int64) {
	h.t.Helper()
	for {
		before := time.Now().UnixNano()
		if h.get(key) == nil {
			return
		}
		if before >= expiresAt {
			h.t.Fatalf("Get(%q) returned the entry %v after its ExpiresAt", key, time.Duration(before-expiresAt))
		}
		time.Sleep(min(5*time.Millisecond, time.Duration(expiresAt-before)))
	}
}

func (s *suite) testExpiry(t *testing.T, h *harness) {
	short := h.entry([]byte("short"))
	short.Tags = []string{"t"}
	short.ExpiresAt = unixNano(shortLife)
	want := clone(short)
	h.set("short", short)
	lasting := h.entry([]byte("lasting"))
	h.set("lasting", lasting)

	// Before its deadline the entry must be there, unless the machine was
	// so slow that the deadline passed meanwhile.
	before := time.Now().UnixNano()
	got := h.get("short")
	if got == nil && before < want.ExpiresAt {
		t.Fatalf("Get returned a miss %v before ExpiresAt", time.Duration(want.ExpiresAt-before))
	}
	if got != nil {
		if d := diff(want, got); d != "" {
			t.Fatalf("Get before ExpiresAt: %s", d)
		}
	}
	h.waitGone("short", want.ExpiresAt)
	h.expect("lasting", lasting)
}

func (s *suite) testAlreadyExpired(t *testing.T, h *harness) {
	for _, c := range []struct {
		key       string
		expiresAt int64
	}{
		{"a-second-ago", unixNano(-time.Second)},
		{"just-now", time.Now().UnixNano()},
		{"long-ago", 1},
	} {
		e := h.entry([]byte("expired"))
		e.ExpiresAt = c.expiresAt
		if err := h.l.Set(h.ctx, c.key, e); err != nil {
			// Refusing the write is fine too; returning it is not.
			t.Logf("Set of an expired entry (%s): %v", c.key, err)
		}
		h.expect(c.key, nil)
	}
}

func (s *suite) testSetExpiredOverLive(t *testing.T, h *harness) {
	h.set("k", h.entry([]byte("live")))
	e := h.entry([]byte("expired"))
	e.ExpiresAt = unixNano(-time.Second)
	if err := h.l.Set(h.ctx, "k", e); err != nil {
		t.Logf("Set of an expired entry: %v", err)
	}
	h.expect("k", nil)
}

func (s *suite) testOverwriteExtendsExpiry(t *testing.T, h *harness) {
	deadline := unixNano(shortLife)
	for _, k := range []string{"sentinel", "k", "k2"} {
		e := h.entry([]byte("short"))
		e.ExpiresAt = deadline
		h.set(k, e)
	}
	lasting := h.entry([]byte("lasting"))
	h.set("k", lasting)
	longer := h.entry([]byte("longer"))
	longer.ExpiresAt = unixNano(time.Hour)
	h.set("k2", longer)

	h.waitGone("sentinel", deadline)
	h.expect("k", lasting)
	h.expect("k2", longer)
}

func (s *suite) testOverwriteShortensExpiry(t *testing.T, h *harness) {
	h.set("k", h.entry([]byte("lasting")))
	e := h.entry([]byte("short"))
	e.ExpiresAt = unixNano(shortLife)
	h.set("k", e)
	h.waitGone("k", e.ExpiresAt)
}
