package disk

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nutsdb/nutsdb"

	"github.com/layercache/layercache/driver"
)

// populated returns a closed layer directory holding several segments of
// self-checking entries, with overwrites and deletes, and the keys written
// with the version each was last written with (0 for deleted).
func populated(t *testing.T) (string, map[string]int) {
	t.Helper()
	dir := t.TempDir()
	l, err := New(Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 64 << 10, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 3))
	latest := map[string]int{}
	for v := 1; v <= 1500; v++ {
		k := fmt.Sprint("k", rng.IntN(400))
		if rng.IntN(10) == 0 {
			if err := l.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			latest[k] = 0
			continue
		}
		e := &driver.Entry{Payload: selfChecking(rng, k, v, 50+rng.IntN(3000)), ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
		if err := l.Set(ctx, k, e); err != nil {
			t.Fatal(err)
		}
		latest[k] = v
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, latest
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func dataFiles(t *testing.T, dir string) []segment {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("want at least 3 data files to corrupt, have %d", len(segs))
	}
	return segs
}

// dataEnd returns where the records of a data file end.
func dataEnd(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for {
		h, n, ok := parseHeader(b[off:])
		if !ok || h.end() {
			return int64(off)
		}
		off += n + int(h.ksz+h.vsz)
	}
}

func flip(t *testing.T, path string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// craftRecord builds a record with a valid checksum around an arbitrary
// header, as nutsdb would never write it.
func craftRecord(ksz, vsz, ds uint64, key, value []byte) []byte {
	b := make([]byte, 4, 64+len(key)+len(value))
	for _, v := range []uint64{uint64(time.Now().UnixMilli()), ksz, vsz, uint64(nutsdb.DataSetFlag), 60,
		uint64(nutsdb.Committed), ds, 1, 1} {
		b = binary.AppendUvarint(b, v)
	}
	b = append(append(b, key...), value...)
	binary.LittleEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b
}

// TestReopen_CorruptFilesGiveMissesNeverGarbage corrupts the files of a
// closed layer by hand in many ways. Each time, New must succeed without
// panicking, and every Get must return a miss or an entry written whole.
func TestReopen_CorruptFilesGiveMissesNeverGarbage(t *testing.T) {
	src, latest := populated(t)
	rng := rand.New(rand.NewPCG(9, 9))
	type corruption func(t *testing.T, dir string)
	middleOf := func(t *testing.T, s segment) int64 { return 1 + rng.Int64N(max(dataEnd(t, s.path)-2, 1)) }
	cases := map[string]corruption{
		"flip a byte in every data file": func(t *testing.T, dir string) {
			for _, s := range dataFiles(t, dir) {
				flip(t, s.path, middleOf(t, s), byte(1+rng.IntN(255)))
			}
		},
		"flip 64 bytes anywhere": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			for range 64 {
				s := segs[rng.IntN(len(segs))]
				flip(t, s.path, rng.Int64N(s.size), byte(1+rng.IntN(255)))
			}
		},
		"flip a byte in the newest data file's last record": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			s := segs[len(segs)-1]
			flip(t, s.path, dataEnd(t, s.path)-3, 0x40)
		},
		"truncate the newest data file": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			s := segs[len(segs)-1]
			if err := os.Truncate(s.path, middleOf(t, s)); err != nil {
				t.Fatal(err)
			}
		},
		"truncate the oldest data file": func(t *testing.T, dir string) {
			s := dataFiles(t, dir)[0]
			if err := os.Truncate(s.path, middleOf(t, s)); err != nil {
				t.Fatal(err)
			}
		},
		"empty a middle data file": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			if err := os.Truncate(segs[len(segs)/2].path, 0); err != nil {
				t.Fatal(err)
			}
		},
		"random garbage over a middle data file": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			s := segs[len(segs)/2]
			junk := make([]byte, 4096)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			writeAt(t, s.path, middleOf(t, s), junk)
		},
		"zeros over a middle data file hide the records after them": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			s := segs[len(segs)/2]
			writeAt(t, s.path, middleOf(t, s), make([]byte, 4096))
		},
		"a record nutsdb would panic on (unknown data structure)": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			s := segs[len(segs)-1]
			writeAt(t, s.path, dataEnd(t, s.path), craftRecord(2, 1, 9, []byte("kx"), []byte("v")))
		},
		"a record claiming a 3 GiB value": func(t *testing.T, dir string) {
			segs := dataFiles(t, dir)
			s := segs[len(segs)-1]
			writeAt(t, s.path, dataEnd(t, s.path), craftRecord(2, 3<<30, uint64(nutsdb.DataStructureBTree), []byte("kx"), nil))
		},
		"truncate the bucket file": func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, nutsdb.BucketStoreFileName), 7); err != nil {
				t.Fatal(err)
			}
		},
		"flip a byte in the bucket file": func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, nutsdb.BucketStoreFileName), 12, 0xff)
		},
		"garbage after the bucket record": func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, nutsdb.BucketStoreFileName), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(f, "\x00\x00\x00\x00\x01\x00\x02\x00\x00\x00xx")
			f.Close()
		},
		"remove the bucket file": func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, nutsdb.BucketStoreFileName)); err != nil {
				t.Fatal(err)
			}
		},
	}
	for seed := range 5 {
		cases[fmt.Sprintf("flip one random byte (seed %d)", seed)] = func(t *testing.T, dir string) {
			r := rand.New(rand.NewPCG(uint64(seed), 1))
			segs := dataFiles(t, dir)
			s := segs[r.IntN(len(segs))]
			flip(t, s.path, r.Int64N(max(dataEnd(t, s.path), 1)), byte(1+r.IntN(255)))
		}
	}

	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			corrupt(t, dir)
			var warnings atomic.Int64
			l := openNoPanic(t, Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 64 << 10, Logger: countingLogger(&warnings)})
			keys := make([]string, 0, len(latest))
			for k := range latest {
				keys = append(keys, k)
			}
			hits, stale := 0, 0
			for _, k := range keys {
				e, err := l.Get(context.Background(), k)
				if err != nil {
					t.Fatalf("Get(%q) after repair: %v", k, err)
				}
				if e == nil {
					continue
				}
				v, err := checkPayload(k, e.Payload)
				if err != nil {
					t.Fatalf("Get(%q) returned garbage: %v", k, err)
				}
				hits++
				if v != latest[k] {
					stale++
				}
			}
			t.Logf("%d of %d keys served, %d warnings", hits, len(keys), warnings.Load())
			if stale > 0 {
				// Damage may lose entries, never bring back an older value.
				t.Errorf("%d keys served a value older than their last write", stale)
			}
			if warnings.Load() == 0 {
				t.Error("the repair logged no warning")
			}
			// The layer works on: write, read, and a clean second reopen.
			mustSet(t, l, "after", entry("v", time.Hour))
			if e := mustGet(t, l, "after"); e == nil {
				t.Fatal("a write after repair was lost")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			warnings.Store(0)
			l = openNoPanic(t, Options{Dir: dir, MaxSize: 1 << 20, SegmentSize: 64 << 10, Logger: countingLogger(&warnings)})
			if n := warnings.Load(); n != 0 {
				t.Errorf("second reopen after repair logged %d warnings; want a clean directory", n)
			}
			if again := verifyAll(t, l, keys); again != hits {
				t.Errorf("second reopen serves %d keys, first served %d", again, hits)
			}
			if e := mustGet(t, l, "after"); e == nil {
				t.Error("the write after repair did not survive a reopen")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// openNoPanic opens a layer, failing the test (not crashing) on a panic.
func openNoPanic(t *testing.T, o Options) (l *Layer) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("New panicked: %v", r)
		}
	}()
	l, err := New(o)
	if err != nil {
		t.Fatalf("New on a corrupted directory: %v", err)
	}
	return l
}
