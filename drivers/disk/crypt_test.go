package disk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nutsdb/nutsdb"

	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/keyring"
)

// testKey returns a 32-byte key made of b.
func testKey(b byte) Key { return Key(bytes.Repeat([]byte{b}, 32)) }

func TestConformance_Encrypted(t *testing.T) {
	var (
		mu     sync.Mutex
		layers = map[*testing.T]*Layer{}
	)
	open := func(t *testing.T) driver.Layer {
		l, err := New(Options{Dir: t.TempDir(), MaxSize: 16 << 20, Logger: quietLogger, EncryptionKeys: []Key{testKey(1)}})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		layers[t] = l
		mu.Unlock()
		return l
	}
	corrupt := func(t *testing.T, key string) {
		mu.Lock()
		l := layers[t]
		mu.Unlock()
		rawPut(t, l, key, []byte("not an envelope"))
	}
	drivertest.RunLayerTests(t, open, drivertest.Options{Corrupt: corrupt})
}

// rawGet reads the stored bytes of key with nutsdb directly.
func rawGet(t *testing.T, l *Layer, key string) []byte {
	t.Helper()
	var v []byte
	err := l.db.View(func(tx *nutsdb.Tx) error {
		b, err := tx.Get(bucketName, storeKey(key))
		v = bytes.Clone(b)
		return err
	})
	if err != nil {
		t.Fatalf("raw get %q: %v", key, err)
	}
	return v
}

func TestEncryption_FilesHoldNoPlaintext(t *testing.T) {
	const secret = "card-number-4111111111111111"
	const tag = "customer-tag-9f8e7d"
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprint("encrypted=", encrypted), func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, Logger: quietLogger}
			if encrypted {
				o.EncryptionKeys = []Key{testKey(7)}
			}
			l := openLayer(t, o)
			e := entry(secret, time.Hour)
			e.Tags = []string{tag}
			mustSet(t, l, "k", e)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			var all []byte
			for _, s := range dataFilesAny(t, dir) {
				b, err := os.ReadFile(s.path)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			// The unencrypted run shows that the search would find them.
			for _, word := range []string{secret, tag} {
				if found := bytes.Contains(all, []byte(word)); found == encrypted {
					t.Errorf("%q in the data files: %v", word, found)
				}
			}
		})
	}
}

func dataFilesAny(t *testing.T, dir string) []segment {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) == 0 {
		t.Fatal("no data files")
	}
	return segs
}

// checkRefused asserts that reading key gives an unauthenticated corrupt
// record, which is then gone.
func checkRefused(t *testing.T, l *Layer, key string) {
	t.Helper()
	before := l.Stats().Corrupt
	e, err := l.Get(context.Background(), key)
	if e != nil || !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("Get(%q) = %+v, %v; want a miss with an error wrapping ErrUnauthenticated and envelope.ErrCorrupt", key, e, err)
	}
	if got := l.Stats().Corrupt; got != before+1 {
		t.Errorf("Stats().Corrupt = %d, want %d", got, before+1)
	}
	if e := mustGet(t, l, key); e != nil {
		t.Errorf("Get(%q) after the refusal = %+v; the record was not removed", key, e)
	}
	var n int
	_ = l.db.View(func(tx *nutsdb.Tx) error {
		if _, err := tx.Get(bucketName, storeKey(key)); err == nil {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Errorf("nutsdb still holds %q", key)
	}
}

func TestEncryption_TamperedRecordIsMissCountedAndRemoved(t *testing.T) {
	key := testKey(1)
	other, err := newSealer([]Key{testKey(2)})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := envelope.Marshal(entry("forged", time.Hour), envelope.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, forge := range map[string]func(t *testing.T, l *Layer) []byte{
		"flipped ciphertext bit": func(t *testing.T, l *Layer) []byte {
			b := rawGet(t, l, "k")
			b[len(b)-20] ^= 1
			return b
		},
		"flipped header bit": func(t *testing.T, l *Layer) []byte {
			b := rawGet(t, l, "k")
			b[3+keyring.IDSize] ^= 0x80 // in the salt
			return b
		},
		"re-encrypted with another key": func(t *testing.T, l *Layer) []byte {
			b, err := other.seal(storeKey("k"), plain)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"another key's id with valid bytes": func(t *testing.T, l *Layer) []byte {
			b := rawGet(t, l, "k")
			id := keyring.IDOf(testKey(2))
			copy(b[3:], id[:])
			return b
		},
		"record of another cache key": func(t *testing.T, l *Layer) []byte {
			mustSet(t, l, "other", entry("other's value", time.Hour))
			return rawGet(t, l, "other")
		},
		"unencrypted envelope": func(*testing.T, *Layer) []byte { return plain },
		"truncated":            func(t *testing.T, l *Layer) []byte { return rawGet(t, l, "k")[:sealOverhead-1] },
	} {
		t.Run(name, func(t *testing.T) {
			l := openLayer(t, Options{Dir: t.TempDir(), EncryptionKeys: []Key{key}})
			mustSet(t, l, "k", entry("genuine", time.Hour))
			rawPut(t, l, "k", forge(t, l))
			checkRefused(t, l, "k")
		})
	}
}

func TestEncryption_BytesFlippedInDataFileAreRefusedAfterReopen(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, EncryptionKeys: []Key{testKey(3)}}
	l := openLayer(t, o)
	mustSet(t, l, "victim", entry(strings.Repeat("v", 200), time.Hour))
	mustSet(t, l, "bystander", entry("fine", time.Hour))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip a ciphertext byte of the record and give the record a valid
	// nutsdb checksum again, as someone who can write the files would: the
	// file's own integrity checks then pass, and only the encryption's
	// authentication can tell.
	seg := dataFilesAny(t, dir)[0]
	b, err := os.ReadFile(seg.path)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for off := 0; ; {
		h, n, ok := parseHeader(b[off:])
		if !ok || h.end() {
			break
		}
		end := off + n + int(h.ksz+h.vsz)
		if string(b[off+n:off+n+int(h.ksz)]) == string(storeKey("victim")) && h.vsz > 0 {
			b[off+n+int(h.ksz)+sealHeader+5] ^= 0x40
			binary.LittleEndian.PutUint32(b[off:], crc32.ChecksumIEEE(b[off+4:end]))
			found = true
		}
		off = end
	}
	if !found {
		t.Fatal("record of the victim key not found in the data file")
	}
	if err := os.WriteFile(seg.path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	l = openLayer(t, o)
	checkRefused(t, l, "victim")
	if e := mustGet(t, l, "bystander"); e == nil || string(e.Payload) != "fine" {
		t.Errorf("bystander = %+v", e)
	}
}

func TestEncryption_KeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey, newKey := testKey(4), testKey(5)
	open := func(keys ...Key) *Layer {
		l := openLayer(t, Options{Dir: dir, EncryptionKeys: keys})
		return l
	}
	idOf := func(l *Layer, key string) keyring.ID {
		var id keyring.ID
		copy(id[:], rawGet(t, l, key)[3:])
		return id
	}

	l := open(oldKey)
	mustSet(t, l, "old", entry("written with the old key", time.Hour))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The new key first, the old one still accepted.
	l = open(newKey, oldKey)
	if e := mustGet(t, l, "old"); e == nil || string(e.Payload) != "written with the old key" {
		t.Fatalf("old record under [new, old] = %+v", e)
	}
	mustSet(t, l, "new", entry("written with the new key", time.Hour))
	if got, want := idOf(l, "new"), keyring.IDOf(newKey); got != want {
		t.Errorf("new record's key id = %v, want the new key's %v", got, want)
	}
	if got, want := idOf(l, "old"), keyring.IDOf(oldKey); got != want {
		t.Errorf("old record's key id = %v, want the old key's %v", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The old key dropped: what it encrypted is refused and removed.
	l = open(newKey)
	if e := mustGet(t, l, "new"); e == nil || string(e.Payload) != "written with the new key" {
		t.Fatalf("new record under [new] = %+v", e)
	}
	checkRefused(t, l, "old")
}

func TestEncryption_TagIndexIsRebuiltFromEncryptedRecords(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, EncryptionKeys: []Key{testKey(6)}}
	l := openLayer(t, o)
	mustSet(t, l, "a1", tagged("a1", "a"))
	mustSet(t, l, "ab", tagged("ab", "a", "b"))
	mustSet(t, l, "b1", tagged("b1", "b"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLayer(t, o)
	checkTagIndex(t, l)
	invalidate(t, l, "a")
	expectKeys(t, l, []string{"a1", "ab", "b1"}, map[string]string{"b1": "b1"})
}

func TestEncryption_GetManyRemovesEveryRefusedRecord(t *testing.T) {
	l := openLayer(t, Options{Dir: t.TempDir(), EncryptionKeys: []Key{testKey(8)}})
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, l, k, entry(k, time.Hour))
	}
	rawPut(t, l, "a", []byte("forged"))
	rawPut(t, l, "c", []byte("forged too"))
	out, err := l.GetMany(context.Background(), []string{"a", "b", "c"})
	if out != nil || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("GetMany = %v, %v; want the batch failed with ErrUnauthenticated", out, err)
	}
	if l.Stats().Corrupt != 2 {
		t.Errorf("Stats().Corrupt = %d, want 2", l.Stats().Corrupt)
	}
	out, err = l.GetMany(context.Background(), []string{"a", "b", "c"})
	if err != nil || out[0] != nil || out[2] != nil || out[1] == nil || string(out[1].Payload) != "b" {
		t.Errorf("GetMany after the refusal = %v, %v; want only b", out, err)
	}
}

func TestOptions_EncryptionKeysAreChecked(t *testing.T) {
	for name, keys := range map[string][]Key{
		"short":     {Key(make([]byte, 16))},
		"long":      {Key(make([]byte, 33))},
		"duplicate": {testKey(1), testKey(2), testKey(1)},
	} {
		_, err := New(Options{Dir: t.TempDir(), EncryptionKeys: keys, Logger: quietLogger})
		if err == nil || !strings.Contains(err.Error(), "encryption_keys[") {
			t.Errorf("%s: New = %v; want an error naming encryption_keys[i]", name, err)
		}
	}
}

// TestKey_NeverPrinted checks every way a program might print options or
// configurations holding keys.
func TestKey_NeverPrinted(t *testing.T) {
	k := testKey(0xab)
	o := Options{Dir: "/d", EncryptionKeys: []Key{k}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("opening", "options", o, "key", k)
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	l := openLayer(t, Options{Dir: t.TempDir(), EncryptionKeys: []Key{k}})
	outputs := map[string]string{
		"%v":    fmt.Sprintf("%v", o),
		"%+v":   fmt.Sprintf("%+v", o),
		"%#v":   fmt.Sprintf("%#v", o),
		"%s":    fmt.Sprintf("%s", o.EncryptionKeys),
		"%x":    fmt.Sprintf("%x", k),
		"%q":    fmt.Sprintf("%q", k),
		"layer": fmt.Sprintf("%+v", l),
		"slog":  logged.String(),
		"json":  string(js),
	}
	for how, out := range outputs {
		for _, form := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), string(k), "171, 171", "171 171"} {
			if strings.Contains(out, form) {
				t.Errorf("%s prints the key: %s", how, out)
			}
		}
	}
	if !strings.Contains(outputs["%v"], keyring.Redacted) {
		t.Errorf("%%v = %s; want the key shown as %s", outputs["%v"], keyring.Redacted)
	}
}

func TestDriver_EncryptionKeysFromFileAndEnvironment(t *testing.T) {
	k1, k2 := testKey(0x11), testKey(0x22)
	dir := t.TempDir()
	doc := fmt.Sprintf("layers:\n  - driver: disk\n    dir: %s\n    encryption_keys: [%q]\n", dir, hex.EncodeToString(k1))
	open := func(doc string) (*Layer, error) {
		t.Helper()
		cfg, err := config.Parse([]byte(doc), "test.yaml")
		if err != nil {
			return nil, err
		}
		d, _ := driver.Lookup("disk")
		l, err := d.(driver.Driver).OpenLayer(context.Background(), cfg.Layers[0])
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = l.Close() })
		return l.(*Layer), nil
	}

	l, err := open(doc)
	if err != nil {
		t.Fatal(err)
	}
	if l.seal == nil || l.seal.first != keyring.IDOf(k1) {
		t.Fatal("the key from the file is not the layer's key")
	}
	mustSet(t, l, "k", entry("v", time.Hour))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// The environment replaces the list: the new key in base64 first,
	// the old one after it.
	t.Setenv("LAYERCACHE_LAYERS__0__ENCRYPTION_KEYS", base64.StdEncoding.EncodeToString(k2)+",hex:"+hex.EncodeToString(k1))
	l, err = open(doc)
	if err != nil {
		t.Fatal(err)
	}
	if l.seal.first != keyring.IDOf(k2) {
		t.Error("the environment's first key is not the layer's first key")
	}
	if e := mustGet(t, l, "k"); e == nil || string(e.Payload) != "v" {
		t.Errorf("record of the second key = %+v", e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Bad keys are errors that name the key's place, never its text.
	os.Unsetenv("LAYERCACHE_LAYERS__0__ENCRYPTION_KEYS") // Setenv restores it
	for _, bad := range []string{"zz-not-a-key-at-all-but-secretish", hex.EncodeToString(k1[:16])} {
		_, err := open(fmt.Sprintf("layers:\n  - driver: disk\n    dir: %s\n    encryption_keys: [%q]\n", t.TempDir(), bad))
		if err == nil || !strings.Contains(err.Error(), "encryption_keys[0]") || strings.Contains(err.Error(), bad[:8]) {
			t.Errorf("key %d chars: err = %v; want an error naming encryption_keys[0] without the text", len(bad), err)
		}
	}
}

// FuzzSealerOpen feeds untrusted bytes to the decryption of records: it
// must refuse them without panicking, and accept only what was sealed.
func FuzzSealerOpen(f *testing.F) {
	s, err := newSealer([]Key{testKey(1), testKey(2)})
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.seal(storeKey("k"), []byte("envelope"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:sealOverhead])
	f.Add([]byte("LE\x01"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		plain, err := s.open(storeKey("k"), rec)
		if err != nil {
			return
		}
		// Only a record sealed by these keys opens: the seeds' (the
		// fuzzing workers seal their own, with other random salts).
		if string(plain) != "envelope" || len(rec) != len(good) {
			t.Fatalf("opened %x as %q", rec, plain)
		}
	})
}
