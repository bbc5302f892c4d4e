package memcached

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/redistest"
)

func tagged(payload string, tags ...string) *driver.Entry {
	return &driver.Entry{Payload: []byte(payload), Codec: "raw", Tags: tags, ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
}

// A write that read its tags' epochs before an invalidation and lands
// after it must not bring the old value back.
func TestInvalidateTags_WriteRacingInvalidationStaysInvisible(t *testing.T) {
	s := startServer(t)
	raw := s.Client(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()

	if err := l.Set(ctx, "k", tagged("old", "users", "org:7")); err != nil {
		t.Fatal(err)
	}
	written, err := raw.Get(l.storageKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.InvalidateTags(ctx, "org:7"); err != nil {
		t.Fatal(err)
	}
	// The late write: the value as it was prepared before the invalidation.
	if err := raw.Set(&memcache.Item{Key: written.Key, Value: written.Value}); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); e != nil || err != nil {
		t.Fatalf("Get of a value written with an invalidated tag's epoch = %v, %v; want a miss", e, err)
	}
	// A writer that comes after creates the tag's epoch anew; the older
	// value stays invisible, the newer one is served.
	if err := l.Set(ctx, "k2", tagged("new", "org:7")); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); e != nil || err != nil {
		t.Fatalf("the old value came back once the tag had a new epoch: %v, %v", e, err)
	}
	if e, err := l.Get(ctx, "k2"); err != nil || e == nil || string(e.Payload) != "new" {
		t.Fatalf("Get of the value written after the invalidation = %v, %v", e, err)
	}
	es, err := l.GetMany(ctx, []string{"k", "k2"})
	if err != nil || es[0] != nil || es[1] == nil {
		t.Fatalf("GetMany disagrees with Get: %v, %v", es, err)
	}
}

func TestInvalidateTags_EvictedEpochIsAMiss(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()
	if err := l.Set(ctx, "k", tagged("v", "t")); err != nil {
		t.Fatal(err)
	}
	// What memcached's LRU would do to an idle tag.
	if err := s.Client(t).Delete(l.tagKey("t")); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); e != nil || err != nil {
		t.Fatalf("Get after the tag's epoch was evicted = %v, %v; want a miss", e, err)
	}
}

func TestGet_TaggedEntryCostsOneMoreRoundTrip(t *testing.T) {
	s := startServer(t)
	proxy := redistest.NewProxy(t, s.Addr())
	l := newLayerT(t, Options{Addrs: []string{proxy.Addr()}})
	ctx := context.Background()
	if err := l.Set(ctx, "plain", &driver.Entry{Payload: []byte("p"), Codec: "raw"}); err != nil {
		t.Fatal(err)
	}
	for i, tags := range [][]string{{"a"}, {"a", "b", "c", "d"}} {
		key := "tagged" + string(rune('0'+i))
		if err := l.Set(ctx, key, tagged("t", tags...)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		what string
		op   func() error
		want int64
	}{
		{"Get of an untagged entry", func() error { _, err := l.Get(ctx, "plain"); return err }, 1},
		{"Get of an entry with one tag", func() error { _, err := l.Get(ctx, "tagged0"); return err }, 2},
		{"Get of an entry with four tags", func() error { _, err := l.Get(ctx, "tagged1"); return err }, 2},
		{"Set of an untagged entry", func() error { return l.Set(ctx, "plain", &driver.Entry{Payload: []byte("p")}) }, 1},
		{"Set of an entry whose tags exist", func() error { return l.Set(ctx, "tagged1", tagged("t", "a", "b", "c", "d")) }, 2},
		{"GetMany over tagged and untagged entries", func() error {
			_, err := l.GetMany(ctx, []string{"plain", "tagged0", "absent", "tagged1"})
			return err
		}, 2},
		{"GetMany over untagged entries", func() error { _, err := l.GetMany(ctx, []string{"plain", "absent"}); return err }, 1},
	} {
		proxy.Reset()
		if err := c.op(); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if got := proxy.UpstreamWrites(); got != c.want {
			t.Errorf("%s: %d round trips, want %d", c.what, got, c.want)
		}
	}
}

func TestGet_BadTaggedHeaderIsCorrupt(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()
	rec, err := envelope.Marshal(tagged("v", "t"), envelope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{
		"header only":         []byte(taggedMagic),
		"zero epochs":         append([]byte(taggedMagic+"\x00"), rec...),
		"more epochs than b":  []byte(taggedMagic + "\x05abc"),
		"epochs for two tags": wrapTagged([]epoch{{1}, {2}}, rec),
		"tagged, no header":   rec,
	} {
		if err := s.Client(t).Set(&memcache.Item{Key: "k", Value: v}); err != nil {
			t.Fatal(err)
		}
		if e, err := l.Get(ctx, "k"); e != nil || !errors.Is(err, envelope.ErrCorrupt) {
			t.Errorf("%s: Get = %v, %v; want an error wrapping envelope.ErrCorrupt", name, e, err)
		}
	}
}

func TestSet_ForeignItemAtATagKeyIsReplaced(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}})
	ctx := context.Background()
	if err := l.Set(ctx, "old", tagged("old", "t")); err != nil {
		t.Fatal(err)
	}
	if err := s.Client(t).Set(&memcache.Item{Key: l.tagKey("t"), Value: []byte("not an epoch")}); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "old"); e != nil || err != nil {
		t.Fatalf("Get of an entry whose tag epoch was overwritten = %v, %v; want a miss", e, err)
	}
	if err := l.Set(ctx, "new", tagged("new", "t")); err != nil {
		t.Fatalf("Set with a foreign item at the tag's key: %v", err)
	}
	if e, err := l.Get(ctx, "new"); err != nil || e == nil || string(e.Payload) != "new" {
		t.Fatalf("Get after the tag's epoch was replaced = %v, %v", e, err)
	}
}
