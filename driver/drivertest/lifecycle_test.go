package drivertest_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
)

// Reference layers for prefix invalidation and soft expiry: the reference
// layers of drivertest_test.go with the two capabilities added, done the
// simplest correct way.

type goLifecycle struct{ *goLayer }

func (l goLifecycle) InvalidatePrefix(_ context.Context, prefix string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(k string, _ *driver.Entry) bool { return strings.HasPrefix(k, prefix) })
	return nil
}

func (l goLifecycle) expireWhere(match func(k string, e *driver.Entry) bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().UnixNano()
	for k, e := range l.m {
		if match(k, e) {
			l.m[k], _ = e.StaleCopy(now)
		}
	}
	return nil
}

func (l goLifecycle) Expire(_ context.Context, keys ...string) error {
	return l.expireWhere(func(k string, _ *driver.Entry) bool { return slices.Contains(keys, k) })
}

func (l goLifecycle) ExpireTags(_ context.Context, tags ...string) error {
	return l.expireWhere(func(_ string, e *driver.Entry) bool { return slices.ContainsFunc(tags, e.HasTag) })
}

func (l goLifecycle) ExpirePrefix(_ context.Context, prefix string) error {
	return l.expireWhere(func(k string, _ *driver.Entry) bool { return strings.HasPrefix(k, prefix) })
}

type byteLifecycle struct{ *byteLayer }

func (l byteLifecycle) InvalidatePrefix(_ context.Context, prefix string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(k string, _ []byte) bool { return strings.HasPrefix(k, prefix) })
	return nil
}

func (l byteLifecycle) expireWhere(match func(k string, e *driver.Entry) bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().UnixNano()
	for k, b := range l.m {
		e, err := envelope.Unmarshal(b)
		if err != nil || !match(k, e) {
			continue
		}
		if c, changed := e.StaleCopy(now); changed {
			nb, err := envelope.Marshal(c, envelope.Options{CompressAbove: 1024})
			if err != nil {
				return err
			}
			l.m[k] = nb
		}
	}
	return nil
}

func (l byteLifecycle) Expire(_ context.Context, keys ...string) error {
	return l.expireWhere(func(k string, _ *driver.Entry) bool { return slices.Contains(keys, k) })
}

func (l byteLifecycle) ExpireTags(_ context.Context, tags ...string) error {
	return l.expireWhere(func(_ string, e *driver.Entry) bool { return slices.ContainsFunc(tags, e.HasTag) })
}

func (l byteLifecycle) ExpirePrefix(_ context.Context, prefix string) error {
	return l.expireWhere(func(k string, _ *driver.Entry) bool { return strings.HasPrefix(k, prefix) })
}

var (
	_ driver.PrefixInvalidator = goLifecycle{}
	_ driver.Expirer           = goLifecycle{}
	_ driver.InProcess         = goLifecycle{}
	_ driver.PrefixInvalidator = byteLifecycle{}
	_ driver.Expirer           = byteLifecycle{}
	_ driver.BatchGetter       = byteLifecycle{}
)

func TestReferenceLifecycleLayersPass(t *testing.T) {
	t.Run("in-process", func(t *testing.T) {
		drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer { return goLifecycle{newGoLayer()} }, drivertest.Options{})
	})
	t.Run("bytes", func(t *testing.T) {
		runBytes(t, func(l *byteLayer) driver.Layer { return byteLifecycle{l} })
	})
}

// Broken variants, each caught by the subtest brokenLayers names for it.

// globPrefix reads the prefix as a glob pattern, as a Redis layer that
// forgot to quote it in SCAN MATCH would.
type globPrefix struct{ byteLifecycle }

func (l globPrefix) InvalidatePrefix(_ context.Context, prefix string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(k string, _ []byte) bool { return globMatch(prefix+"*", k) })
	return nil
}

// globMatch is a small glob: '*' any run, '?' any byte, '[...]' one of,
// '\' quotes the next byte.
func globMatch(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(p[1:], s[1:])
	case '[':
		end := strings.IndexByte(p, ']')
		if end < 0 || s == "" {
			return false
		}
		return strings.IndexByte(p[1:end], s[0]) >= 0 && globMatch(p[end+1:], s[1:])
	case '\\':
		if len(p) > 1 {
			p = p[1:]
		}
	}
	return s != "" && s[0] == p[0] && globMatch(p[1:], s[1:])
}

// pagesOnce stops after the first 250 keys, as a scan that ignores the
// cursor would.
type pagesOnce struct{ byteLifecycle }

func (l pagesOnce) InvalidatePrefix(_ context.Context, prefix string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k := range l.m {
		if n < 250 && strings.HasPrefix(k, prefix) {
			delete(l.m, k)
		}
		n++
	}
	return nil
}

// expireDeletes removes entries instead of making them stale.
type expireDeletes struct{ byteLifecycle }

func (l expireDeletes) Expire(ctx context.Context, keys ...string) error {
	return l.Delete(ctx, keys...)
}

// expireInPlace changes the stored entry rather than a copy.
type expireInPlace struct{ goLifecycle }

func (l expireInPlace) Expire(_ context.Context, keys ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e := l.m[k]; e != nil {
			e.StaleAt = time.Now().UnixNano()
		}
	}
	return nil
}

// expireMovesDeadline makes entries expire now instead of going stale.
type expireMovesDeadline struct{ byteLifecycle }

func (l expireMovesDeadline) ExpireTags(_ context.Context, tags ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.m {
		e, err := envelope.Unmarshal(b)
		if err != nil || !slices.ContainsFunc(tags, e.HasTag) {
			continue
		}
		e.StaleAt = time.Now().UnixNano()
		e.ExpiresAt = e.StaleAt + int64(time.Minute)
		l.m[k], _ = envelope.Marshal(e, envelope.Options{})
	}
	return nil
}

// expireFreshens sets StaleAt to now even on entries already stale.
type expireFreshens struct{ byteLifecycle }

func (l expireFreshens) ExpirePrefix(_ context.Context, prefix string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.m {
		e, err := envelope.Unmarshal(b)
		if err != nil || !strings.HasPrefix(k, prefix) {
			continue
		}
		e.StaleAt = time.Now().UnixNano()
		l.m[k], _ = envelope.Marshal(e, envelope.Options{})
	}
	return nil
}

func init() {
	for name, b := range map[string]struct {
		open    func() driver.Layer
		subtest string
	}{
		"glob-prefix":           {func() driver.Layer { return globPrefix{byteLifecycle{newByteLayer()}} }, "PrefixInvalidatorRemovesExactlyMatchingKeys"},
		"prefix-first-page":     {func() driver.Layer { return pagesOnce{byteLifecycle{newByteLayer()}} }, "PrefixInvalidatorReachesEveryKeyOfALargePrefix"},
		"expire-deletes":        {func() driver.Layer { return expireDeletes{byteLifecycle{newByteLayer()}} }, "ExpirerMakesKeysStaleInPlace"},
		"expire-in-place":       {func() driver.Layer { return expireInPlace{goLifecycle{newGoLayer()}} }, "ExpirerMakesKeysStaleInPlace"},
		"expire-moves-deadline": {func() driver.Layer { return expireMovesDeadline{byteLifecycle{newByteLayer()}} }, "ExpirerMakesTaggedEntriesStale"},
		"expire-freshens":       {func() driver.Layer { return expireFreshens{byteLifecycle{newByteLayer()}} }, "ExpirerMakesPrefixedEntriesStale"},
	} {
		brokenLayers[name] = b
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{`g*[x]?\**`, "gAAxB*tail", true},
		{`g\*\[x\]\?\\*`, "gAAxB*tail", false},
		{`g\*\[x\]\?\\*`, `g*[x]?\1`, true},
		{"user:*", "users:1", false},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}
