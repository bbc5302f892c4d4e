package disk

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/nutsdb/nutsdb"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// tagIndexSize returns the number of tags in the tag index and the number of
// (tag, key) pairs it holds.
func (l *Layer) tagIndexSize() (tags, pairs int) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, keys := range l.idx.tags {
		pairs += len(keys)
	}
	return len(l.idx.tags), pairs
}

// checkTagIndex fails the test unless the tag index maps each tag to exactly
// the live keys whose entries carry it, and holds nothing else.
func checkTagIndex(t *testing.T, l *Layer) {
	t.Helper()
	l.mu.RLock()
	want := map[string]map[string]struct{}{}
	pairs := 0
	for k, it := range l.idx.items {
		for _, tag := range it.tags {
			if want[tag] == nil {
				want[tag] = map[string]struct{}{}
			}
			if _, dup := want[tag][k]; !dup {
				pairs++
			}
			want[tag][k] = struct{}{}
		}
	}
	equal := maps.EqualFunc(want, l.idx.tags, func(a, b map[string]struct{}) bool { return maps.Equal(a, b) })
	l.mu.RUnlock()
	if !equal {
		t.Fatalf("tag index out of step with the entries")
	}
	if nt, np := l.tagIndexSize(); nt != len(want) || np != pairs {
		t.Fatalf("tag index holds %d tags, %d pairs; live entries carry %d tags, %d pairs", nt, np, len(want), pairs)
	}
}

func tagged(payload string, tags ...string) *driver.Entry {
	e := entry(payload, time.Hour)
	e.Tags = tags
	return e
}

func invalidate(t *testing.T, l *Layer, tags ...string) {
	t.Helper()
	if err := l.InvalidateTags(context.Background(), tags...); err != nil {
		t.Fatalf("InvalidateTags(%q): %v", tags, err)
	}
}

// expectKeys fails unless exactly the keys in want (of those in all) hold
// an entry, with the payload want gives.
func expectKeys(t *testing.T, l *Layer, all []string, want map[string]string) {
	t.Helper()
	for _, k := range all {
		e := mustGet(t, l, k)
		p, ok := want[k]
		switch {
		case ok && e == nil:
			t.Errorf("%s is gone; want %q", k, p)
		case ok && string(e.Payload) != p:
			t.Errorf("%s = %q; want %q", k, e.Payload, p)
		case !ok && e != nil:
			t.Errorf("%s = %q; want it gone", k, e.Payload)
		}
	}
}

func TestInvalidateTags_TagsSurviveReopenAndCompaction(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 64 << 10, CompressAbove: 100}
	l := openLayer(t, o)
	ctx := context.Background()
	mustSet(t, l, "a1", tagged("a1", "a"))
	mustSet(t, l, "a2", tagged("a2", "b", "a"))
	mustSet(t, l, "big-a", tagged(strings.Repeat("compressed ", 100), "a")) // S2-compressed envelope
	mustSet(t, l, "b1", tagged("b1", "b"))
	mustSet(t, l, "untagged", tagged("untagged"))
	mustSet(t, l, "retagged", tagged("old", "a"))
	mustSet(t, l, "retagged", tagged("new", "c")) // the latest record decides
	mustSet(t, l, "deleted", tagged("deleted", "a"))
	if err := l.Delete(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetMany(ctx, []string{"m1", "m2"}, []*driver.Entry{tagged("m1", "a", "a"), tagged("m2", "b")}); err != nil {
		t.Fatal(err)
	}
	// Compaction rewrites every live record into new files; their tags
	// must come through it.
	filler := make([]byte, 40<<10) // incompressible, so that two fill a segment
	_, _ = rand.NewChaCha8([32]byte{}).Read(filler)
	mustSet(t, l, "filler1", tagged(string(filler)))
	mustSet(t, l, "filler2", tagged(string(filler)))
	l.merge()
	if l.merges.Load() == 0 {
		t.Fatal("no compaction ran")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLayer(t, o)
	checkTagIndex(t, l)
	if nt, np := l.tagIndexSize(); nt != 3 || np != 8 {
		t.Fatalf("reopened tag index holds %d tags, %d pairs; want 3 tags (a, b, c), 8 pairs", nt, np)
	}
	all := []string{"a1", "a2", "big-a", "b1", "untagged", "retagged", "deleted", "m1", "m2", "filler1", "filler2"}
	invalidate(t, l, "a")
	expectKeys(t, l, all, map[string]string{"b1": "b1", "untagged": "untagged", "retagged": "new", "m2": "m2",
		"filler1": string(filler), "filler2": string(filler)})
	invalidate(t, l, "c", "b")
	expectKeys(t, l, all, map[string]string{"untagged": "untagged", "filler1": string(filler), "filler2": string(filler)})
	checkTagIndex(t, l)
}

func TestInvalidateTags_OverwriteWithoutTagKeepsEntry(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	mustSet(t, l, "k", tagged("old", "t"))
	mustSet(t, l, "other", tagged("other", "t", "u"))
	mustSet(t, l, "k", tagged("new"))
	if err := l.SetMany(context.Background(), []string{"other"}, []*driver.Entry{tagged("other-new", "u")}); err != nil {
		t.Fatal(err)
	}
	checkTagIndex(t, l)
	if nt, np := l.tagIndexSize(); nt != 1 || np != 1 {
		t.Fatalf("tag index holds %d tags, %d pairs after untagging; want only u -> other", nt, np)
	}
	invalidate(t, l, "t")
	expectKeys(t, l, []string{"k", "other"}, map[string]string{"k": "new", "other": "other-new"})
	invalidate(t, l, "u")
	expectKeys(t, l, []string{"k", "other"}, map[string]string{"k": "new"})
}

// TestInvalidateTags_KeyRewrittenDuringInvalidationKeepsNewValue: between
// the snapshot of a tag's keys and the transaction that deletes them, a key
// rewritten without the tag holds a new value, which the invalidation must
// not take; one rewritten with the tag goes.
func TestInvalidateTags_KeyRewrittenDuringInvalidationKeepsNewValue(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir()})
	for _, k := range []string{"a", "b", "c", "d"} {
		mustSet(t, l, k, tagged(k, "t"))
	}
	l.mu.RLock()
	keys := l.idx.tagged([]string{"t"})
	l.mu.RUnlock()
	mustSet(t, l, "a", tagged("a2"))      // untagged now
	mustSet(t, l, "b", tagged("b2", "t")) // still tagged
	if err := l.Delete(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := l.dropTagged(keys, []string{"t"}); err != nil {
		t.Fatal(err)
	}
	expectKeys(t, l, []string{"a", "b", "c", "d"}, map[string]string{"a": "a2"})
	checkTagIndex(t, l)
}

// TestTagIndex_FollowsEvictionDeleteExpiryAndClear writes many more tagged
// entries than fit, each with a tag of its own, and checks after each kind
// of removal that the index holds the live entries' tags and no others.
func TestTagIndex_FollowsEvictionDeleteExpiryAndClear(t *testing.T) {
	const maxSize = 64 << 10
	l := openLayer(t, Options{Dir: t.TempDir(), MaxSize: maxSize})
	ctx := context.Background()
	payload := strings.Repeat("x", 200)
	const n = 3000
	for i := range n {
		mustSet(t, l, fmt.Sprint("k", i), tagged(payload, "all", fmt.Sprint("group", i%7), fmt.Sprint("own", i)))
	}
	live := l.Len()
	if live >= n/4 {
		t.Fatalf("%d of %d entries live; the test needs most of them evicted", live, n)
	}
	checkTagIndex(t, l)
	if nt, np := l.tagIndexSize(); nt != 1+7+live || np != 3*live {
		t.Fatalf("after eviction the tag index holds %d tags, %d pairs; want %d, %d for %d live entries",
			nt, np, 1+7+live, 3*live, live)
	}

	var del []string
	for i := n - live; i < n; i += 2 {
		del = append(del, fmt.Sprint("k", i))
	}
	if err := l.Delete(ctx, del...); err != nil {
		t.Fatal(err)
	}
	checkTagIndex(t, l)
	if _, np := l.tagIndexSize(); np != 3*l.Len() {
		t.Fatalf("after Delete the tag index holds %d pairs for %d entries", np, l.Len())
	}

	// Expiry: entries the sweep forgets leave the index.
	for i := range 20 {
		e := entry(payload, 20*time.Millisecond)
		e.Tags = []string{"short", fmt.Sprint("short", i)}
		mustSet(t, l, fmt.Sprint("s", i), e)
	}
	time.Sleep(40 * time.Millisecond) // past the short entries' deadline
	l.sweep()
	checkTagIndex(t, l)
	l.mu.RLock()
	_, short := l.idx.tags["short"]
	l.mu.RUnlock()
	if short {
		t.Fatal("the tag of swept entries is still indexed")
	}

	if err := l.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if nt, np := l.tagIndexSize(); nt != 0 || np != 0 {
		t.Fatalf("after Clear the tag index holds %d tags, %d pairs", nt, np)
	}
}

func TestInvalidateTags_LargeTagDeletedInBoundedBatches(t *testing.T) {
	const big = 20_000
	l := openLayer(t, Options{Dir: t.TempDir(), MaxSize: 64 << 20})
	ctx := context.Background()
	keys := make([]string, 0, big+200)
	entries := make([]*driver.Entry, 0, big+200)
	for i := range big {
		keys = append(keys, fmt.Sprint("big", i))
		entries = append(entries, tagged("v", "big"))
	}
	for i := range 100 {
		keys = append(keys, fmt.Sprint("other", i), fmt.Sprint("plain", i))
		entries = append(entries, tagged("v", "other"), tagged("v"))
	}
	if err := l.SetMany(ctx, keys, entries); err != nil {
		t.Fatal(err)
	}
	if l.Len() != len(keys) {
		t.Fatalf("Len = %d after writing %d entries; the test needs all of them live", l.Len(), len(keys))
	}

	if invalidateBatch > 1000 {
		t.Fatalf("invalidateBatch = %d; a transaction of InvalidateTags must delete at most 1000 keys", invalidateBatch)
	}
	invalidate(t, l, "big")
	if got, want := l.tagBatches.Load(), int64((big+invalidateBatch-1)/invalidateBatch); got != want {
		t.Errorf("InvalidateTags of %d keys committed %d transactions; want %d of at most %d keys",
			big, got, want, invalidateBatch)
	}
	if l.Len() != 200 {
		t.Errorf("Len = %d after invalidating; want the 200 entries without the tag", l.Len())
	}
	es, err := l.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if (e == nil) != (i < big) {
			t.Fatalf("%s: entry %v after invalidating big", keys[i], e)
		}
	}
	// nutsdb itself must no longer hold them either.
	var stored [][]byte
	err = l.db.Update(func(tx *nutsdb.Tx) error {
		ks, err := tx.GetKeys(bucketName)
		stored = ks
		return err
	})
	if err != nil || len(stored) != 200 {
		t.Fatalf("nutsdb holds %d keys (%v); want 200", len(stored), err)
	}
	checkTagIndex(t, l)
}

// TestInvalidateTags_ConcurrentWrites: every entry tagged when the
// invalidation starts is gone when it returns; writes made meanwhile land
// whole, and an entry rewritten without the tag is either gone or its new
// value.
func TestInvalidateTags_ConcurrentWrites(t *testing.T) {
	const n = 4000
	l := openLayer(t, Options{Dir: t.TempDir(), MaxSize: 64 << 20})
	ctx := context.Background()
	keys := make([]string, n)
	entries := make([]*driver.Entry, n)
	for i := range n {
		keys[i] = fmt.Sprint("old", i)
		entries[i] = tagged("old", "t")
	}
	if err := l.SetMany(ctx, keys, entries); err != nil {
		t.Fatal(err)
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { // rewrites even keys without the tag
		<-start
		for i := 0; i < n; i += 2 {
			if err := l.Set(ctx, keys[i], tagged("rewritten")); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() { // adds new tagged keys
		<-start
		for i := range n / 4 {
			if err := l.Set(ctx, fmt.Sprint("new", i), tagged("new", "t")); err != nil {
				errs <- err
				return
			}
		}
	})
	close(start)
	invalidate(t, l, "t")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, k := range keys {
		e := mustGet(t, l, k)
		switch {
		case e == nil:
		case i%2 == 1:
			t.Fatalf("%s, tagged when the invalidation started and not rewritten, survived it", k)
		case string(e.Payload) != "rewritten" || slices.Contains(e.Tags, "t"):
			t.Fatalf("%s = %q with tags %q; want it gone or rewritten untagged", k, e.Payload, e.Tags)
		}
	}
	checkTagIndex(t, l)
	// Whatever survived with the tag goes with the next invalidation.
	invalidate(t, l, "t")
	l.mu.RLock()
	left := len(l.idx.tags["t"])
	l.mu.RUnlock()
	if left != 0 {
		t.Fatalf("%d entries still tagged after a quiet invalidation", left)
	}
}

// FuzzRecordTags: the header-only tag reader agrees with envelope.Unmarshal
// on every value Unmarshal accepts, and never panics on any other. v is read
// as a stored value as it is; the other arguments build an entry whose
// envelope is read (random bytes rarely pass the envelope's checksum, so
// agreement is checked mostly on those).
func FuzzRecordTags(f *testing.F) {
	f.Add([]byte("not an envelope"), "json", "users,,org:{7}", []byte("v"), false)
	f.Add([]byte{}, "", "", []byte(nil), false)
	f.Add([]byte("LC\x01\x00"), "a-codec-of-our-own", strings.Repeat("t,", 300), []byte(strings.Repeat("zip ", 500)), true)
	f.Fuzz(func(t *testing.T, v []byte, codec, tags string, payload []byte, compress bool) {
		check := func(v []byte) {
			got := recordTags(v, map[string]string{})
			e, err := envelope.Unmarshal(slices.Clone(v))
			if err != nil {
				return
			}
			if !slices.Equal(got, e.Tags) {
				t.Fatalf("recordTags = %q; envelope.Unmarshal reads %q", got, e.Tags)
			}
		}
		check(v)
		e := &driver.Entry{Codec: codec, Payload: payload}
		if tags != "" {
			e.Tags = strings.Split(tags, ",")
		}
		opt := envelope.Options{}
		if compress {
			opt.CompressAbove = 1
		}
		b, err := envelope.Marshal(e, opt)
		if err != nil {
			return
		}
		if got := recordTags(b, map[string]string{}); !slices.Equal(got, e.Tags) {
			t.Fatalf("recordTags = %q; entry written with %q", got, e.Tags)
		}
		check(b[:len(b)/2])
	})
}

func TestRecordTags_InternsRepeatedTags(t *testing.T) {
	intern := map[string]string{}
	var first []string
	for i := range 3 {
		b, err := envelope.Marshal(&driver.Entry{Payload: []byte(fmt.Sprint(i)), Tags: []string{"users", "team"}}, envelope.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tags := recordTags(b, intern)
		if !slices.Equal(tags, []string{"users", "team"}) {
			t.Fatalf("tags %q", tags)
		}
		if first == nil {
			first = tags
		} else if unsafe.StringData(tags[0]) != unsafe.StringData(first[0]) {
			t.Fatal("a repeated tag was not interned")
		}
	}
}
