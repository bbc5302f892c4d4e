package snapshot

import (
	"bytes"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

func benchEntries(n, size int) []kv {
	out := make([]kv, n)
	exp := time.Now().Add(time.Hour).UnixNano()
	for i := range out {
		p := make([]byte, size)
		rand.Read(p)
		out[i] = kv{"user:" + strconv.Itoa(i), &driver.Entry{Payload: p, Codec: "json", StaleAt: exp, ExpiresAt: exp, Tags: []string{"users"}}}
	}
	return out
}

// BenchmarkRoundTrip writes and reads back a snapshot of 10,000 entries of
// 1 KiB. Its baseline, envelope=only, encodes and decodes the same entries
// with the envelope alone: the difference is what the stream's framing,
// checksum and whole-stream validation cost.
func BenchmarkRoundTrip(b *testing.B) {
	entries := benchEntries(10000, 1024)
	b.Run("entries=10000/size=1KiB/envelope=only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, x := range entries {
				rec, err := envelope.Marshal(x.e, envelope.Options{CompressAbove: compressAbove})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := envelope.Unmarshal(rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("entries=10000/size=1KiB/snapshot", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		size := 0
		for b.Loop() {
			buf.Reset()
			w := NewWriter(&buf)
			for _, x := range entries {
				if err := w.Write(x.key, x.e); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			size = buf.Len()
			n := 0
			if err := Read(&buf, Limits{}, func(string, *driver.Entry) error { n++; return nil }); err != nil || n != len(entries) {
				b.Fatalf("Read: %d entries, %v", n, err)
			}
		}
		b.SetBytes(int64(size))
	})
}
