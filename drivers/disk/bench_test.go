package disk

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nutsdb/nutsdb"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

const benchKeys = 1000

// benchEntry is the 1 KB entry the benchmarks store.
func benchEntry() *driver.Entry {
	p := make([]byte, 1024)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return &driver.Entry{Payload: p, Codec: "bench", ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
}

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprint("user:", i)
	}
	return keys
}

// BenchmarkGet measures a disk layer hit of a 1 KB payload: index lookup,
// nutsdb read, envelope decode. BenchmarkNutsdbGet is its baseline.
func BenchmarkGet(b *testing.B) {
	l := openLayer(b, Options{Dir: b.TempDir()})
	ctx := context.Background()
	keys := benchKeyNames()
	for _, k := range keys {
		mustSet(b, l, k, benchEntry())
	}
	b.Run("size=1KB", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e, err := l.Get(ctx, keys[i%benchKeys])
			if err != nil || e == nil {
				b.Fatal(e, err)
			}
			i++
		}
	})
	b.Run("size=1KB/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				e, err := l.Get(ctx, keys[i%benchKeys])
				if err != nil || e == nil {
					b.Fatal(e, err)
				}
				i++
			}
		})
	})
}

// BenchmarkNutsdbGet is the baseline of BenchmarkGet: nutsdb, opened as the
// layer opens it, reading the same bytes in a read transaction.
func BenchmarkNutsdbGet(b *testing.B) {
	db, err := openDB(b.TempDir(), DefaultMaxSize/8)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	keys := benchKeyNames()
	val, err := envelope.Marshal(benchEntry(), envelope.Options{})
	if err != nil {
		b.Fatal(err)
	}
	err = db.Update(func(tx *nutsdb.Tx) error {
		for _, k := range keys {
			if err := tx.Put(bucketName, storeKey(k), val, 3600); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	get := func(k string) {
		err := db.View(func(tx *nutsdb.Tx) error {
			v, err := tx.Get(bucketName, storeKey(k))
			if err == nil && len(v) != len(val) {
				err = fmt.Errorf("read %d bytes", len(v))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("size=1KB", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			get(keys[i%benchKeys])
			i++
		}
	})
	b.Run("size=1KB/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				get(keys[i%benchKeys])
				i++
			}
		})
	})
}

// BenchmarkSet measures a write of a 1 KB entry (one nutsdb transaction,
// no fsync), for scale.
func BenchmarkSet(b *testing.B) {
	l := openLayer(b, Options{Dir: b.TempDir()})
	ctx := context.Background()
	keys := benchKeyNames()
	e := benchEntry()
	b.Run("size=1KB", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := l.Set(ctx, keys[i%benchKeys], e); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
