package disk

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// dirBytes returns the apparent size of the files in dir (what ls shows;
// segments count at full size) and the bytes allocated to them on disk.
func dirBytes(t *testing.T, dir string) (apparent, allocated int64) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		info, err := os.Stat(filepath.Join(dir, de.Name()))
		if err != nil {
			continue // removed by a compaction meanwhile
		}
		apparent += info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
	}
	return apparent, allocated
}

// TestDirectory_StaysNearMaxSizeUnderTenfoldWrites writes ten times
// MaxSize through the layer and checks the bound the package documents:
// after a compaction the directory holds at most MaxSize plus two segments.
func TestDirectory_StaysNearMaxSizeUnderTenfoldWrites(t *testing.T) {
	const (
		maxSize = 1 << 20
		segment = maxSize / 8 // the default for this MaxSize
		slack   = 64 << 10    // bucket and lock files, a record per segment that did not fit
	)
	dir := t.TempDir()
	l := openLayer(t, Options{Dir: dir, MaxSize: maxSize})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	payload := make([]byte, 1000)
	var written, peak int64
	for i := 0; written < 10*maxSize; i++ {
		key := fmt.Sprint("k", i)
		if i%4 == 0 && i > 0 {
			key = fmt.Sprint("k", i-1-rng.IntN(min(i, 500))) // some overwrites
		}
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		e := &driver.Entry{Payload: payload, ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
		if err := l.Set(ctx, key, e); err != nil {
			t.Fatal(err)
		}
		written += int64(len(payload))
		if size := l.Size(); size > maxSize {
			t.Fatalf("Size %d > MaxSize %d after a write", size, maxSize)
		}
		if i%64 == 0 {
			a, _ := dirBytes(t, dir)
			peak = max(peak, a)
		}
	}
	// Let a compaction in progress finish and run the last one now, as the
	// background task would on its next tick.
	l.stopMaintenance()
	l.merge()
	apparent, allocated := dirBytes(t, dir)
	t.Logf("wrote %d bytes; live %d in %d entries; %d merges; directory: peak %d while writing, %d after merge (%d allocated)",
		written, l.Size(), l.Len(), l.merges.Load(), peak, apparent, allocated)
	if bound := int64(maxSize + 2*segment + slack); apparent > bound {
		t.Fatalf("directory holds %d bytes after compaction; bound MaxSize+2*segment+slack = %d", apparent, bound)
	}
	if l.merges.Load() < 5 {
		t.Errorf("only %d compactions for %d bytes written", l.merges.Load(), written)
	}
	// Everything the index holds is still readable.
	if hits := len(allKeys(l)); hits == 0 || l.Len() != hits {
		t.Fatalf("index holds %d keys", hits)
	}
	for _, k := range allKeys(l) {
		if mustGet(t, l, k) == nil {
			t.Fatalf("%s is indexed but not readable after compaction", k)
		}
	}
}
