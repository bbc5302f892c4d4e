package memcached

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/memcachedtest"
)

func TestConformance(t *testing.T) {
	s := startServer(t)
	raw := s.Client(t)
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
		l, err := New(Options{Addrs: []string{s.Addr()}, Prefix: testPrefix(t), MaxValueSize: 2 << 20, Timeout: roomyTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
		l := &Layer{prefix: testPrefix(t)}
		if err := raw.Set(&memcache.Item{Key: l.storageKey(key), Value: []byte("hello")}); err != nil {
			t.Fatal(err)
		}
	}})
}

func TestConformance_CompressedOverTwoServers(t *testing.T) {
	a, b := startServer(t), startServer(t)
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
		l, err := New(Options{Addrs: []string{a.Addr(), b.Addr()}, Prefix: testPrefix(t), MaxValueSize: 2 << 20, CompressAbove: 512, Timeout: roomyTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
		// Write the foreign value on both servers: whichever holds the
		// key serves it.
		l := &Layer{prefix: testPrefix(t)}
		for _, s := range []*memcachedtest.Server{a, b} {
			if err := s.Client(t).Set(&memcache.Item{Key: l.storageKey(key), Value: []byte("LC\x01 not a record")}); err != nil {
				t.Fatal(err)
			}
		}
	}})
}

func TestStorageKey_LegalKeysAreStoredAsGiven(t *testing.T) {
	l := &Layer{prefix: "app:"}
	for _, k := range []string{"user:42", "a", "ключ", "x#y", strings.Repeat("k", maxKeyLen-len("app:"))} {
		if got := l.storageKey(k); got != "app:"+k {
			t.Errorf("storageKey(%q) = %q, want it prefixed as is", k, got)
		}
	}
}

func TestStorageKey_OtherKeysAreHashedWithinMemcachedRules(t *testing.T) {
	l := &Layer{prefix: strings.Repeat("p", maxPrefixLen)}
	keys := []string{
		"",
		"with space",
		"tab\there",
		"new\nline",
		"del\x7f",
		"nul\x00",
		"#starts-with-mark",
		strings.Repeat("k", maxKeyLen-maxPrefixLen+1),
		strings.Repeat("k", 10000),
	}
	seen := map[string]string{}
	for _, k := range keys {
		sk := l.storageKey(k)
		if len(sk) > maxKeyLen || !legalKeyBytes(sk) {
			t.Errorf("storageKey(%q) = %q: not a legal memcached key", k, sk)
		}
		if !strings.HasPrefix(sk, l.prefix+"#") || len(sk) != len(l.prefix)+hashedLen {
			t.Errorf("storageKey(%q) = %q, want the prefix, '#' and a hash", k, sk)
		}
		if other, dup := seen[sk]; dup {
			t.Errorf("keys %q and %q share the stored key %q", k, other, sk)
		}
		seen[sk] = k
		// Deterministic: another layer with the same prefix agrees.
		if again := (&Layer{prefix: l.prefix}).storageKey(k); again != sk {
			t.Errorf("storageKey(%q) is not deterministic: %q, then %q", k, sk, again)
		}
	}
	// A legal key that looks like a hashed one cannot meet it: it is
	// hashed in turn.
	forged := strings.TrimPrefix(l.storageKey("with space"), l.prefix)
	if l.storageKey(forged) == l.storageKey("with space") {
		t.Errorf("the cache key %q is stored where the hash of another key is", forged)
	}
}

func TestStorageKey_HashedKeysReachTheServer(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, Prefix: "app:"})
	ctx := context.Background()
	long := strings.Repeat("long key ", 100)
	for i, k := range []string{long, long + "x", "with space", "#mark"} {
		e := &driver.Entry{Payload: []byte(fmt.Sprint("value ", i)), Codec: "raw"}
		if err := l.Set(ctx, k, e); err != nil {
			t.Fatalf("Set(%.20q): %v", k, err)
		}
		if _, err := s.Client(t).Get(l.storageKey(k)); err != nil {
			t.Fatalf("the server does not hold %.20q under its hashed key: %v", k, err)
		}
	}
	for i, k := range []string{long, long + "x", "with space", "#mark"} {
		e, err := l.Get(ctx, k)
		if err != nil || e == nil || string(e.Payload) != fmt.Sprint("value ", i) {
			t.Fatalf("Get(%.20q) = %v, %v", k, e, err)
		}
	}
}

func TestExpiration_RelativeUpTo30DaysAbsoluteBeyond(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	day := 24 * time.Hour
	for _, c := range []struct {
		name string
		life time.Duration
		own  bool
		want int32
	}{
		{"a nanosecond rounds up", time.Nanosecond, false, 1},
		{"whole seconds stay", 90 * time.Second, false, 90},
		{"fractions round up", 1500 * time.Millisecond, false, 2},
		{"own expiry gets a second more", 150 * time.Millisecond, true, 2},
		{"30 days is relative", 30 * day, false, maxRelative},
		{"30 days less a second with margin is relative", 30*day - time.Second, true, maxRelative},
		{"beyond 30 days is absolute", 30*day + time.Second, false, 1_800_000_000 + maxRelative + 1},
		{"a year is absolute", 365 * day, false, 1_800_000_000 + 365*86400},
		{"past 2038 is capped", 100 * 365 * day, false, 1<<31 - 1},
	} {
		if got := expiration(c.life, c.own, now); got != c.want {
			t.Errorf("%s: expiration(%v, %v) = %d, want %d", c.name, c.life, c.own, got, c.want)
		}
	}
}

func TestSet_LongTTLIsKeptByTheServer(t *testing.T) {
	// Beyond 30 days memcached reads the expiration as a Unix time; sent
	// as a number of seconds, it would be a date in 1970 and the item
	// would be gone at once.
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, TTL: 90 * 24 * time.Hour})
	ctx := context.Background()
	for name, expiresAt := range map[string]int64{
		"no expiry":    0,
		"in 40 days":   time.Now().Add(40 * 24 * time.Hour).UnixNano(),
		"in 10 years":  time.Now().Add(10 * 365 * 24 * time.Hour).UnixNano(),
		"in 29.9 days": time.Now().Add(30*24*time.Hour - 2*time.Hour).UnixNano(),
		"in a minute":  time.Now().Add(time.Minute).UnixNano(),
	} {
		e := &driver.Entry{Payload: []byte(name), Codec: "raw", ExpiresAt: expiresAt}
		if err := l.Set(ctx, name, e); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client(t).Get(l.storageKey(name)); err != nil {
			t.Errorf("%s: the server dropped the item at once: %v", name, err)
		}
	}
}

func TestSet_ShortLivedItemExpiresInTheServerToo(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	e := &driver.Entry{Payload: []byte("v"), Codec: "raw", ExpiresAt: time.Now().Add(200 * time.Millisecond).UnixNano()}
	if err := l.Set(context.Background(), "k", e); err != nil {
		t.Fatal(err)
	}
	// memcached frees it by itself within a few seconds; nothing is left
	// behind for the layer to hide forever.
	eventually(t, "memcached to drop the expired item", func() bool {
		_, err := s.Client(t).Get("k")
		return errors.Is(err, memcache.ErrCacheMiss)
	})
}

func TestSet_TooLargeIsRefusedAndRemovesOldValue(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, MaxValueSize: 1000})
	ctx := context.Background()
	if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("small"), Codec: "raw"}); err != nil {
		t.Fatal(err)
	}
	err := l.Set(ctx, "k", &driver.Entry{Payload: bytes.Repeat([]byte("x"), 1001), Codec: "raw"})
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("Set of 1001 bytes with max_value_size 1000 = %v, want ErrValueTooLarge", err)
	}
	if e, err := l.Get(ctx, "k"); e != nil || err != nil {
		t.Fatalf("the older value survived a refused write: %v, %v", e, err)
	}
}

func TestSet_ItemLargerThanServerAllowsIsAnError(t *testing.T) {
	// max_value_size above the server's -I: the server refuses the item,
	// and the layer says so rather than losing the write silently.
	s := memcachedtest.Start(t) // largest item 1 MiB
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, MaxValueSize: 4 << 20})
	err := l.Set(context.Background(), "k", &driver.Entry{Payload: bytes.Repeat([]byte("x"), 2<<20), Codec: "raw"})
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Set of 2 MiB on a server limited to 1 MiB = %v, want the server's refusal", err)
	}
	// The connection that carried the refusal is not reused broken.
	if err := l.Set(context.Background(), "k2", &driver.Entry{Payload: []byte("v"), Codec: "raw"}); err != nil {
		t.Fatalf("Set after a refused item: %v", err)
	}
}

func TestDeleteIfHolds(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()
	mine := &driver.Entry{Payload: []byte("mine"), Codec: "raw", ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	theirs := &driver.Entry{Payload: []byte("theirs"), Codec: "raw", ExpiresAt: mine.ExpiresAt}

	if err := l.Set(ctx, "k", mine); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteIfHolds(ctx, "k", mine); err != nil {
		t.Fatalf("DeleteIfHolds of the entry held: %v", err)
	}
	if e, err := l.Get(ctx, "k"); e != nil || err != nil {
		t.Fatalf("after DeleteIfHolds of the entry held: %v, %v; want a miss", e, err)
	}
	// The key can be written again at once.
	if err := l.Set(ctx, "k", theirs); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteIfHolds(ctx, "k", mine); err != nil {
		t.Fatalf("DeleteIfHolds of another entry: %v", err)
	}
	if e, err := l.Get(ctx, "k"); err != nil || e == nil || string(e.Payload) != "theirs" {
		t.Fatalf("DeleteIfHolds removed another instance's value: %v, %v", e, err)
	}
	if err := l.DeleteIfHolds(ctx, "absent", mine); err != nil {
		t.Fatalf("DeleteIfHolds of an absent key: %v", err)
	}
}

func TestClose_IsIdempotentAndClosesConnections(t *testing.T) {
	s := startServer(t)
	l, err := New(Options{Addrs: []string{s.Addr()}, Timeout: roomyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := s.Stats(t)["curr_connections"]
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	eventually(t, "the server to see the layer's connection closed", func() bool {
		return s.Stats(t)["curr_connections"] < before
	})
}

func TestAs_GivesTheClient(t *testing.T) {
	l := newLayerT(t, Options{Addrs: []string{"127.0.0.1:1"}, Timeout: 250 * time.Millisecond})
	var c *memcache.Client
	if !l.As(&c) || c == nil {
		t.Fatal("As(**memcache.Client) = false")
	}
	if c.Timeout != 250*time.Millisecond || c.MaxIdleConns != DefaultMaxIdleConns {
		t.Errorf("client Timeout %v, MaxIdleConns %d", c.Timeout, c.MaxIdleConns)
	}
	var s *string
	if l.As(&s) || l.As(nil) {
		t.Error("As accepted a target it cannot set")
	}
}

func TestGet_CorruptValueWrapsErrCorrupt(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	if err := s.Client(t).Set(&memcache.Item{Key: "k", Value: []byte("written by another program")}); err != nil {
		t.Fatal(err)
	}
	e, err := l.Get(context.Background(), "k")
	if e != nil || !errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("Get of a foreign value = %v, %v; want an error wrapping envelope.ErrCorrupt", e, err)
	}
	_, err = l.GetMany(context.Background(), []string{"absent", "k"})
	if !errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("GetMany over a foreign value = %v; want an error wrapping envelope.ErrCorrupt", err)
	}
}

// eventually polls cond until it holds or a generous deadline passes. It
// waits for something to happen; it never asserts how long it took.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
