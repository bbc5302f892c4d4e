package snapshot

import (
	"bytes"
	"testing"

	"github.com/layercache/layercache/driver"
)

// FuzzRead feeds Read arbitrary bytes. It must never panic and never hand
// over an entry from a stream it then refuses; a stream it accepts must
// write back, entry for entry, to a stream that reads the same.
func FuzzRead(f *testing.F) {
	f.Add(write(f, sample()))
	f.Add(write(f, nil))
	f.Add(write(f, sample()[:1]))
	f.Add([]byte(magic + "\x01\x00E\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte(magic + "\x01\x00R\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := Limits{MaxBytes: 1 << 20}
		var got []kv
		err := Read(bytes.NewReader(b), lim, func(key string, e *driver.Entry) error {
			got = append(got, kv{key, e})
			return nil
		})
		if err != nil {
			if len(got) != 0 {
				t.Fatalf("Read refused the stream (%v) after handing over %d entries", err, len(got))
			}
			return
		}
		again, err := readAll(write(t, got), Limits{MaxBytes: 4 << 20})
		if err != nil {
			t.Fatalf("reading back what an accepted stream held: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("read back %d entries, want %d", len(again), len(got))
		}
		for i := range got {
			if again[i].key != got[i].key || !equal(again[i].e, got[i].e) {
				t.Fatalf("entry %d read back as %q %+v, want %q %+v", i, again[i].key, again[i].e, got[i].key, got[i].e)
			}
		}
	})
}
