package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// Regression: otter starts an entry's lifetime over on every write, so a
// soft expiry that only replaced the entry kept it for Options.TTL more.
func TestExpire_KeepsTheLayersDeadline(t *testing.T) {
	const pause = 30 * time.Millisecond
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		expire func(l *Layer) error
	}{
		{"keys", func(l *Layer) error { return l.Expire(ctx, "k") }},
		{"tags", func(l *Layer) error { return l.ExpireTags(ctx, "t") }},
		{"prefix", func(l *Layer) error { return l.ExpirePrefix(ctx, "k") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLayer(t, Options{TTL: time.Hour})
			if err := l.Set(ctx, "k", &driver.Entry{Value: 1, Tags: []string{"t"}}); err != nil {
				t.Fatal(err)
			}
			oe, _ := l.cache.GetEntryQuietly("k")
			before := oe.ExpiresAfter()
			// The lifetime left must have shrunk by at least the pause
			// when read again; a restarted one would not have.
			time.Sleep(pause)
			if err := c.expire(l); err != nil {
				t.Fatal(err)
			}
			oe, ok := l.cache.GetEntryQuietly("k")
			if !ok || oe.Value.StaleAt == 0 {
				t.Fatalf("entry after soft expiry: %+v, present %v; want a stale entry", oe.Value, ok)
			}
			if after := oe.ExpiresAfter(); after > before-pause {
				t.Errorf("lifetime left went from %v to %v across a %v pause: soft expiry extended it", before, after, pause)
			}
		})
	}
}

func TestExpire_ConcurrentWithWritesNeverTearsEntries(t *testing.T) {
	l := newLayer(t, Options{})
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			_ = l.ExpirePrefix(ctx, "k")
			_ = l.ExpireTags(ctx, "t")
			_ = l.Expire(ctx, "k"+strconv.Itoa(i%10))
		}
	}()
	for i := range 20000 {
		k := "k" + strconv.Itoa(i%10)
		e := &driver.Entry{Value: i, Tags: []string{"t"}, ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
		if err := l.Set(ctx, k, e); err != nil {
			t.Fatal(err)
		}
		got, _ := l.Get(ctx, k)
		if got == nil {
			continue
		}
		if got.ExpiresAt == 0 || got.Tags[0] != "t" {
			t.Fatalf("Get(%q) = %+v: a soft expiry lost the entry's fields", k, got)
		}
		if got != e && got.Value != e.Value && got.Value.(int) < i {
			t.Fatalf("Get(%q) returned value %v after %v was written: a soft expiry brought back an older entry", k, got.Value, i)
		}
	}
	<-done
}
