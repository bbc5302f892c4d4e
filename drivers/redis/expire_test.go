package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

func newExpireLayer(t *testing.T, o Options) (*Layer, *goredis.Client) {
	t.Helper()
	s := redistest.Start(t)
	client := newClient(t, s)
	o.Client = client
	if o.Prefix == "" {
		o.Prefix = "app:"
	}
	return newLayerT(t, o), client
}

// Regression guard: rewriting a record with a plain SET would drop its
// expiry in Redis, and rewriting it through Set would start Options.TTL
// over.
func TestExpire_KeepsTheKeysTimeToLive(t *testing.T) {
	const pause = 30 * time.Millisecond
	ctx := context.Background()
	for name, expire := range map[string]func(l *Layer) error{
		"keys":   func(l *Layer) error { return l.Expire(ctx, "k") },
		"tags":   func(l *Layer) error { return l.ExpireTags(ctx, "t") },
		"prefix": func(l *Layer) error { return l.ExpirePrefix(ctx, "k") },
	} {
		t.Run(name, func(t *testing.T) {
			l, client := newExpireLayer(t, Options{TTL: 10 * time.Minute})
			e := &driver.Entry{Payload: []byte("v"), Codec: "raw", Tags: []string{"t"}, ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
			if err := l.Set(ctx, "k", e); err != nil {
				t.Fatal(err)
			}
			before := client.PTTL(ctx, "app:k").Val()
			time.Sleep(pause)
			if err := expire(l); err != nil {
				t.Fatal(err)
			}
			got, err := l.Get(ctx, "k")
			if err != nil || got == nil || got.StaleAt == 0 {
				t.Fatalf("Get after soft expiry = %+v, %v; want a stale entry", got, err)
			}
			after := client.PTTL(ctx, "app:k").Val()
			if after <= 0 || after > before-pause {
				t.Errorf("PTTL went from %v to %v across a %v pause; want it kept", before, after, pause)
			}
		})
	}
}

func TestExpire_LeavesAWriteMadeMeanwhileAlone(t *testing.T) {
	ctx := context.Background()
	l, _ := newExpireLayer(t, Options{})
	old := &driver.Entry{Payload: []byte("old"), Codec: "raw"}
	newer := &driver.Entry{Payload: []byte("newer"), Codec: "raw"}
	for _, k := range []string{"raced", "control"} {
		if err := l.Set(ctx, k, old); err != nil {
			t.Fatal(err)
		}
	}
	rws, err := l.readForExpire(ctx, []string{"raced", "control"}, nil, time.Now().UnixNano())
	if err != nil || len(rws) != 2 {
		t.Fatalf("readForExpire = %d rewrites, %v; want 2", len(rws), err)
	}
	// Between the read and the rewrite, another instance writes the key.
	if err := l.Set(ctx, "raced", newer); err != nil {
		t.Fatal(err)
	}
	if err := l.rewrite(ctx, rws); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "raced"); got == nil || string(got.Payload) != "newer" || got.StaleAt != 0 {
		t.Errorf("the write made meanwhile became %+v; want it as written, fresh", got)
	}
	if got, _ := l.Get(ctx, "control"); got == nil || got.StaleAt == 0 {
		t.Errorf("the untouched key became %+v; want it stale", got)
	}
}

func TestExpireTags_SkipsEntriesRewrittenWithoutTheTag(t *testing.T) {
	ctx := context.Background()
	l, _ := newExpireLayer(t, Options{})
	if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("tagged"), Codec: "raw", Tags: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	// The tag's index still names k after this write.
	if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("untagged"), Codec: "raw"}); err != nil {
		t.Fatal(err)
	}
	if err := l.ExpireTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "k"); got == nil || got.StaleAt != 0 {
		t.Errorf("Get = %+v; an entry without the tag must stay fresh", got)
	}
}

func TestExpire_SkipsValuesThatAreNotRecords(t *testing.T) {
	ctx := context.Background()
	l, client := newExpireLayer(t, Options{})
	if err := client.Set(ctx, "app:foreign", "written by another program", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.SAdd(ctx, "app:set", "member").Err(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Expire":       l.Expire(ctx, "foreign", "set", "absent"),
		"ExpirePrefix": l.ExpirePrefix(ctx, ""),
	} {
		if err != nil {
			t.Errorf("%s over values that are not records: %v", name, err)
		}
	}
	if v := client.Get(ctx, "app:foreign").Val(); v != "written by another program" {
		t.Errorf("a foreign value became %q", v)
	}
	if client.Type(ctx, "app:set").Val() != "set" {
		t.Error("a set was changed")
	}
}

func TestExpire_RecoversFromAnEmptiedScriptCache(t *testing.T) {
	ctx := context.Background()
	l, client := newExpireLayer(t, Options{})
	for _, k := range []string{"a", "b"} {
		if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k), Codec: "raw"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Expire(ctx, "a", "b"); err != nil {
		t.Fatalf("Expire after SCRIPT FLUSH: %v", err)
	}
	for _, k := range []string{"a", "b"} {
		if got, _ := l.Get(ctx, k); got == nil || got.StaleAt == 0 {
			t.Errorf("Get(%q) = %+v, want a stale entry", k, got)
		}
	}
}
