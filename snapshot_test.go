package layercache_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/redis"
	"github.com/layercache/layercache/internal/redistest"
)

// A snapshot taken by one process and imported by another keeps values
// (decoded to the type asked for), remaining lifetimes and tags.
func TestExportImport_RoundTripAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	before, _ := memCache(t)
	must(t, layercache.Set(ctx, before, "user:1", benchUser, layercache.WithTTL(time.Hour), layercache.WithTags("users")))
	must(t, layercache.Set(ctx, before, "greeting", "hello", layercache.WithTTL(30*time.Minute)))
	must(t, layercache.Set(ctx, before, "gone", "x", layercache.WithTTL(time.Millisecond)))
	time.Sleep(5 * time.Millisecond)
	var snap bytes.Buffer
	n, err := before.Export(ctx, &snap)
	if err != nil || n < 2 {
		t.Fatalf("Export wrote %d entries: %v", n, err)
	}
	must(t, before.Close())

	after := newCache(t, []driver.Layer{newMemory(t, memoryOpts), newRedisLayer(t, srv, redis.Options{})}, layercache.WithStrictWrites())
	n, err = after.Import(ctx, bytes.NewReader(snap.Bytes()))
	if err != nil || n != 2 {
		t.Fatalf("Import stored %d entries: %v; want the 2 unexpired", n, err)
	}
	if u, ok, err := layercache.Lookup[user](ctx, after, "user:1"); !ok || err != nil || u.Name != benchUser.Name || len(u.Roles) != 1 {
		t.Fatalf("imported user = %+v, %v, %v", u, ok, err)
	}
	if got := lookupString(t, after, "greeting"); got != "hello" {
		t.Fatalf("imported greeting = %s", got)
	}
	if got := lookupString(t, after, "gone"); got != "<miss>" {
		t.Fatal("an expired entry was imported")
	}
	raw := srv.Client(t)
	if ttl := raw.PTTL(ctx, "test:user:1").Val(); ttl > time.Hour || ttl < 59*time.Minute {
		t.Fatalf("imported user lives %v in Redis, want its remaining hour", ttl)
	}
	must(t, after.InvalidateTags(ctx, "users"))
	if got := lookupString(t, after, "greeting"); got != "hello" {
		t.Fatal("a tag invalidation removed an untagged import")
	}
	if _, ok, _ := layercache.Lookup[user](ctx, after, "user:1"); ok {
		t.Fatal("the imported entry lost its tag")
	}
}

// A snapshot that is truncated or altered is refused whole.
func TestImport_RefusesDamagedSnapshotAndChangesNothing(t *testing.T) {
	src, _ := memCache(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		must(t, layercache.Set(ctx, src, k, "v"))
	}
	var snap bytes.Buffer
	if _, err := src.Export(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for name, b := range map[string][]byte{"truncated": good[:len(good)-5], "altered": flipped, "empty": nil} {
		dst, _ := memCache(t)
		if n, err := dst.Import(ctx, bytes.NewReader(b)); err == nil {
			t.Errorf("%s snapshot: imported %d entries without an error", name, n)
		}
		for _, k := range []string{"a", "b", "c"} {
			if got := lookupString(t, dst, k); got != "<miss>" {
				t.Errorf("%s snapshot: %s was written", name, k)
			}
		}
	}
}
