package memcached

import (
	"errors"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// FuzzDecodeItem feeds arbitrary item values, as anyone who can write to
// memcached could store them, to the layer's decoder: it must return an
// entry, a miss or an error wrapping envelope.ErrCorrupt, never panic, and
// never an entry whose tag epochs do not match its tags.
func FuzzDecodeItem(f *testing.F) {
	e := &driver.Entry{Payload: []byte("payload"), Codec: "json", Tags: []string{"a", "b"}, ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	rec, err := envelope.Marshal(e, envelope.Options{})
	if err != nil {
		f.Fatal(err)
	}
	plain, err := envelope.Marshal(&driver.Entry{Payload: []byte("p")}, envelope.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Add(rec)
	f.Add(wrapTagged([]epoch{{1}, {2}}, rec))
	f.Add(wrapTagged([]epoch{{1}}, rec))
	f.Add([]byte(taggedMagic + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, epochs, err := decodeItem("k", b, time.Now().UnixNano())
		switch {
		case err != nil:
			if e != nil || !errors.Is(err, envelope.ErrCorrupt) {
				t.Fatalf("Entry %v with error %v; want no entry and envelope.ErrCorrupt", e, err)
			}
		case e != nil && epochs != nil && len(epochs) != len(e.Tags)*epochSize:
			t.Fatalf("%d bytes of epochs for %d tags", len(epochs), len(e.Tags))
		case e != nil && epochs == nil && len(e.Tags) > 0:
			t.Fatal("a tagged entry without epochs")
		}
	})
}
