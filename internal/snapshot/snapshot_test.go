package snapshot

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/layercache/layercache/driver"
)

type kv struct {
	key string
	e   *driver.Entry
}

// sample returns entries with every field set in every way that must
// survive a snapshot.
func sample() []kv {
	now := time.Now()
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	return []kv{
		{"user:42", &driver.Entry{Payload: []byte(`{"name":"Ada"}`), Codec: "json",
			StaleAt: now.Add(time.Minute).UnixNano(), ExpiresAt: now.Add(time.Hour).UnixNano(), Tags: []string{"users", "org:{7}"}}},
		{"user:404", &driver.Entry{Codec: "json", ExpiresAt: now.Add(time.Minute).UnixNano(), Negative: true}},
		{"forever", &driver.Entry{Payload: []byte("v"), Codec: "raw"}},
		{"empty", &driver.Entry{Payload: []byte{}, Codec: "raw"}},
		{"nil", &driver.Entry{Codec: "raw"}},
		{"binary", &driver.Entry{Payload: allBytes, Codec: "raw"}},
		{"large", &driver.Entry{Payload: bytes.Repeat([]byte("compressible "), 10000), Codec: "raw"}},
		{"expired", &driver.Entry{Payload: []byte("old"), Codec: "raw", ExpiresAt: now.Add(-time.Hour).UnixNano()}},
		{"", &driver.Entry{Payload: []byte("empty key"), Codec: "raw"}},
		{"ключ 🔑", &driver.Entry{Payload: []byte("unicode"), Codec: "raw"}},
		{"user:42", &driver.Entry{Payload: []byte("duplicate key, later"), Codec: "raw"}},
	}
}

func write(t testing.TB, entries []kv) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, x := range entries {
		if err := w.Write(x.key, x.e); err != nil {
			t.Fatalf("Write(%q): %v", x.key, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// readAll reads b and returns what fn was given.
func readAll(b []byte, lim Limits) ([]kv, error) {
	var got []kv
	err := Read(bytes.NewReader(b), lim, func(key string, e *driver.Entry) error {
		got = append(got, kv{key, e})
		return nil
	})
	return got, err
}

func equal(a, b *driver.Entry) bool {
	return reflect.DeepEqual(a, b) && (a.Payload == nil) == (b.Payload == nil)
}

func TestRoundTripKeepsEveryEntryInOrder(t *testing.T) {
	want := sample()
	got, err := readAll(write(t, want), Limits{})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Read returned %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].key != want[i].key || !equal(got[i].e, want[i].e) {
			t.Errorf("entry %d = %q %+v, want %q %+v", i, got[i].key, got[i].e, want[i].key, want[i].e)
		}
	}
}

func TestEmptySnapshotReadsAsNoEntries(t *testing.T) {
	got, err := readAll(write(t, nil), Limits{})
	if err != nil || len(got) != 0 {
		t.Fatalf("Read of an empty snapshot = %d entries, %v; want none, nil", len(got), err)
	}
}

func TestWriter_ValueIsNotWritten(t *testing.T) {
	e := &driver.Entry{Value: "decoded", Payload: []byte("encoded"), Codec: "raw"}
	got, err := readAll(write(t, []kv{{"k", e}}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].e.Value != nil || string(got[0].e.Payload) != "encoded" {
		t.Errorf("read back %+v, want the payload and no value", got[0].e)
	}
}

// refused checks that reading b fails with an error wrapping want and that
// fn is never called.
func refused(t *testing.T, b []byte, lim Limits, want error) error {
	t.Helper()
	calls := 0
	err := Read(bytes.NewReader(b), lim, func(string, *driver.Entry) error {
		calls++
		return nil
	})
	if !errors.Is(err, want) {
		t.Errorf("Read = %v, want an error wrapping %v", err, want)
	}
	if calls != 0 {
		t.Errorf("fn was called %d times for a refused stream", calls)
	}
	return err
}

func TestTruncatedStreamIsRefusedWholly(t *testing.T) {
	b := write(t, sample()[:6])
	for n := 0; n < len(b); n++ {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			refused(t, b[:n], Limits{}, ErrCorrupt)
		})
	}
}

func TestEveryFlippedByteIsRefused(t *testing.T) {
	b := write(t, sample()[:6])
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			err := Read(bytes.NewReader(c), Limits{}, func(string, *driver.Entry) error {
				t.Fatalf("fn called for a stream with byte %d altered", i)
				return nil
			})
			if err == nil {
				t.Fatalf("byte %d ^ %#x: Read accepted the altered stream", i, mask)
			}
		}
	}
}

func TestWrongVersionIsRefused(t *testing.T) {
	b := write(t, sample()[:2])
	b[len(magic)] = Version + 1
	err := refused(t, b, Limits{}, ErrVersion)
	if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("version %d", Version+1)) {
		t.Errorf("error %q does not name the version", err)
	}
}

func TestNotASnapshotIsRefused(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":       nil,
		"text":        []byte("hello, world, this is not a snapshot"),
		"an envelope": []byte("LC\x01\x00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	} {
		t.Run(name, func(t *testing.T) { refused(t, b, Limits{}, ErrCorrupt) })
	}
}

func TestTrailingDataIsRefused(t *testing.T) {
	b := write(t, sample()[:2])
	refused(t, append(b, 0), Limits{}, ErrCorrupt)
	refused(t, append(b, write(t, sample()[:1])...), Limits{}, ErrCorrupt)
}

func TestCountMismatchIsRefused(t *testing.T) {
	// A stream with a record dropped and the trailer's count and checksum
	// recomputed still has the wrong count.
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.Write("a", &driver.Entry{Payload: []byte("a")})
	w.count++ // claims one more entry than it holds
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err := refused(t, buf.Bytes(), Limits{}, ErrCorrupt)
	if err != nil && !strings.Contains(err.Error(), "counts 2 entries") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

func TestLimits(t *testing.T) {
	b := write(t, sample())
	if _, err := readAll(b, Limits{MaxBytes: int64(len(b)) + 1<<20}); err != nil {
		t.Fatalf("Read within the limits: %v", err)
	}
	noise := &driver.Entry{Payload: make([]byte, 100<<10)}
	rand.Read(noise.Payload)
	big := write(t, []kv{{"noise", noise}})
	empty := write(t, nil)
	for _, c := range []struct {
		name   string
		stream []byte
		lim    Limits
		says   string
	}{
		{"stream longer than MaxBytes", empty, Limits{MaxBytes: int64(len(empty)) - 1}, "the stream is longer than"},
		{"record longer than MaxBytes", big, Limits{MaxBytes: 50 << 10}, "entry 0's entry of"},
		{"decoded entries take more", b, Limits{MaxBytes: int64(len(b))}, "bytes in memory (Limits.MaxBytes)"},
		{"more entries than MaxEntries", b, Limits{MaxEntries: len(sample()) - 1}, "(Limits.MaxEntries)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := refused(t, c.stream, c.lim, ErrTooLarge)
			if err != nil && !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
		})
	}
	for _, lim := range []Limits{{MaxBytes: -1}, {MaxEntries: -1}} {
		if _, err := readAll(b, lim); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("Read with %+v = %v, want an error about the negative limit", lim, err)
		}
	}
}

// A length field that promises more than the stream holds must cost no more
// memory than the stream delivers.
func TestHugeLengthInShortStreamAllocatesLittle(t *testing.T) {
	b := append([]byte(magic), Version, 0, frameRecord)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0x07) // a key of 2 GiB - 1
	b = append(b, "short"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	refused(t, b, Limits{MaxBytes: 4 << 30}, ErrCorrupt)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("reading a 2 GiB length in a %d-byte stream allocated %d bytes", len(b), grew)
	}
}

// A compressed entry that would expand beyond what MaxBytes leaves is
// refused before it is expanded: its size cannot make Read allocate more.
func TestCompressedEntryBeyondLimitIsRefusedUnexpanded(t *testing.T) {
	b := write(t, []kv{{"zeros", &driver.Entry{Payload: make([]byte, 32<<20), Codec: "raw"}}})
	if len(b) > 4<<20 {
		t.Fatalf("32 MiB of zeros took %d bytes in the stream: not compressed", len(b))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := refused(t, b, Limits{MaxBytes: 8 << 20}, ErrTooLarge)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("refusing a %d-byte stream allocated %d bytes", len(b), grew)
	}
	if err != nil && !strings.Contains(err.Error(), "Limits.MaxBytes") {
		t.Errorf("error %q does not name the limit", err)
	}
}

func TestFnErrorStopsRead(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := Read(bytes.NewReader(write(t, sample())), Limits{}, func(string, *driver.Entry) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("Read = %v after %d calls, want fn's error after 2", err, calls)
	}
}

type failingReader struct{ after int }

var errDisk = errors.New("disk on fire")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.after <= 0 {
		return 0, errDisk
	}
	n := min(len(p), r.after)
	for i := range n {
		p[i] = magic[i%len(magic)]
	}
	r.after -= n
	return n, nil
}

func TestReaderErrorIsReturned(t *testing.T) {
	err := Read(&failingReader{after: 3}, Limits{}, func(string, *driver.Entry) error { return nil })
	if !errors.Is(err, errDisk) || errors.Is(err, ErrCorrupt) {
		t.Errorf("Read = %v, want the reader's error, not corruption", err)
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, errDisk
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriter_ErrorsAreSticky(t *testing.T) {
	w := NewWriter(&failingWriter{after: 10})
	// Random bytes do not compress: the record overflows the buffer.
	big := &driver.Entry{Payload: make([]byte, 200<<10)}
	rand.Read(big.Payload)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = w.Write("k", big)
	}
	if !errors.Is(err, errDisk) {
		t.Fatalf("Write = %v, want the writer's error", err)
	}
	if err := w.Write("k", big); !errors.Is(err, errDisk) {
		t.Errorf("Write after a failure = %v, want the same error", err)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close after a failure = %v, want the same error", err)
	}
}

func TestWriter_RefusedEntryLeavesStreamValid(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Write("nil", nil); err == nil {
		t.Error("Write of a nil entry succeeded")
	}
	if err := w.Write("many-tags", &driver.Entry{Tags: make([]string, 1<<16)}); err == nil {
		t.Error("Write of an entry with 65536 tags succeeded")
	}
	if err := w.Write("ok", &driver.Entry{Payload: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if err := w.Write("late", &driver.Entry{}); err == nil {
		t.Error("Write after Close succeeded")
	}
	got, err := readAll(buf.Bytes(), Limits{})
	if err != nil || len(got) != 1 || got[0].key != "ok" || w.Count() != 1 {
		t.Errorf("Read = %d entries, %v; Count() = %d; want the one entry written", len(got), err, w.Count())
	}
}

func TestReadDoesNotNeedTheWholeStreamInOneRead(t *testing.T) {
	b := write(t, sample())
	calls := 0
	err := Read(iotest.OneByteReader(bytes.NewReader(b)), Limits{}, func(string, *driver.Entry) error {
		calls++
		return nil
	})
	if err != nil || calls != len(sample()) {
		t.Fatalf("Read through a one-byte reader = %d entries, %v", calls, err)
	}
}
