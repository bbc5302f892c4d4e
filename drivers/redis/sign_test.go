package redis

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/internal/keyring"
	"github.com/layercache/layercache/internal/redistest"
)

// testKey returns a 32-byte signing key made of b.
func testKey(b byte) Key { return Key(bytes.Repeat([]byte{b}, 32)) }

func TestConformance_Signed(t *testing.T) {
	s := redistest.Start(t)
	client := newClient(t, s)
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
		l, err := New(Options{Client: client, Prefix: testPrefix(t), SigningKeys: []Key{testKey(1), testKey(2)}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
		s.Do(t, "SET", testPrefix(t)+key, "hello")
	}})
}

// checkUnauthenticated asserts that reading key is a refusal counted by
// the layer.
func checkUnauthenticated(t *testing.T, l *Layer, key string) {
	t.Helper()
	before := l.Stats().Unauthenticated
	e, err := l.Get(context.Background(), key)
	if e != nil || !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("Get(%q) = %+v, %v; want a miss with an error wrapping ErrUnauthenticated and envelope.ErrCorrupt", key, e, err)
	}
	if got := l.Stats().Unauthenticated; got != before+1 {
		t.Errorf("Stats().Unauthenticated = %d, want %d", got, before+1)
	}
}

func TestSignedValues_ForgedRecordsAreRefused(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	l := newLayerT(t, Options{Client: c, Prefix: "app:", SigningKeys: []Key{testKey(1)}})
	stranger := newLayerT(t, Options{Client: c, Prefix: "app:", SigningKeys: []Key{testKey(9)}})
	unsigned := newLayerT(t, Options{Client: c, Prefix: "app:"})
	otherPrefix := newLayerT(t, Options{Client: c, Prefix: "other:", SigningKeys: []Key{testKey(1)}})

	genuine := &driver.Entry{Payload: []byte("genuine"), Codec: "raw"}
	raw := func(key string) []byte {
		t.Helper()
		b, err := c.Get(ctx, key).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, forge := range map[string]func(t *testing.T){
		// Another program writes a valid record of the format.
		"unsigned envelope": func(t *testing.T) {
			b, err := envelope.Marshal(&driver.Entry{Payload: []byte("poison"), Codec: "raw"}, envelope.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Do(t, "SET", "app:k", b)
		},
		"written by a layer without keys": func(t *testing.T) {
			if err := unsigned.Set(ctx, "k", &driver.Entry{Payload: []byte("poison"), Codec: "raw"}); err != nil {
				t.Fatal(err)
			}
		},
		"signed with another key": func(t *testing.T) {
			if err := stranger.Set(ctx, "k", &driver.Entry{Payload: []byte("poison"), Codec: "raw"}); err != nil {
				t.Fatal(err)
			}
		},
		"signed with another key under our key id": func(t *testing.T) {
			if err := stranger.Set(ctx, "k", &driver.Entry{Payload: []byte("poison"), Codec: "raw"}); err != nil {
				t.Fatal(err)
			}
			b := raw("app:k")
			id := keyring.IDOf(testKey(1))
			copy(b[len(b)-keyring.TrailerSize:], id[:])
			s.Do(t, "SET", "app:k", b)
		},
		"genuine record of another key": func(t *testing.T) {
			if err := l.Set(ctx, "elsewhere", genuine); err != nil {
				t.Fatal(err)
			}
			s.Do(t, "SET", "app:k", raw("app:elsewhere"))
		},
		"genuine record of another prefix": func(t *testing.T) {
			if err := otherPrefix.Set(ctx, "k", genuine); err != nil {
				t.Fatal(err)
			}
			s.Do(t, "SET", "app:k", raw("other:k"))
		},
		"payload byte changed": func(t *testing.T) {
			if err := l.Set(ctx, "k", genuine); err != nil {
				t.Fatal(err)
			}
			b := raw("app:k")
			i := bytes.Index(b, []byte("genuine"))
			b[i] = 'G'
			s.Do(t, "SET", "app:k", b)
		},
		"signature cut off": func(t *testing.T) {
			if err := l.Set(ctx, "k", genuine); err != nil {
				t.Fatal(err)
			}
			b := raw("app:k")
			s.Do(t, "SET", "app:k", b[:len(b)-signedOverhead])
		},
		"foreign bytes": func(t *testing.T) { s.Do(t, "SET", "app:k", "hello") },
		"empty value":   func(t *testing.T) { s.Do(t, "SET", "app:k", "") },
	} {
		t.Run(name, func(t *testing.T) {
			forge(t)
			checkUnauthenticated(t, l, "k")
		})
	}

	// The layer is not blind: what it signed itself reads back.
	if err := l.Set(ctx, "k", genuine); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); err != nil || e == nil || string(e.Payload) != "genuine" {
		t.Fatalf("own record: %+v, %v", e, err)
	}
}

func TestSignedValues_GetManyRefusesTheBatchAndCountsEach(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newLayerT(t, Options{Client: newClient(t, s), Prefix: "app:", SigningKeys: []Key{testKey(1)}})
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Do(t, "SET", "app:a", "forged")
	s.Do(t, "SET", "app:c", "forged")
	out, err := l.GetMany(ctx, []string{"a", "b", "c"})
	if out != nil || !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, envelope.ErrCorrupt) {
		t.Fatalf("GetMany = %v, %v", out, err)
	}
	if n := l.Stats().Unauthenticated; n != 2 {
		t.Errorf("Stats().Unauthenticated = %d, want 2", n)
	}
}

// signedCache is a memory + signed Redis cache.
func signedCache(t *testing.T, c goredis.UniversalClient, keys ...Key) (*layercache.Cache, *Layer) {
	t.Helper()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2 := newLayerT(t, Options{Client: c, Prefix: "app:", SigningKeys: keys})
	cache, err := layercache.New([]driver.Layer{mem, l2}, layercache.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	return cache, l2
}

func TestSignedValues_CacheRefusesValueWrittenByAnotherProgram(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	ctx := context.Background()
	// The other program knows the format and the key: it writes what an
	// unsigned cache would have written for "poison".
	poisoner := newLayerT(t, Options{Client: newClient(t, s), Prefix: "app:"})
	if err := layercache.Set(ctx, mustCache(t, poisoner), "user:1", "poison", layercache.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}

	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprint("signed=", signed), func(t *testing.T) {
			var keys []Key
			if signed {
				keys = []Key{testKey(1)}
			}
			cache, l2 := signedCache(t, newClient(t, s), keys...)
			loads := 0
			v, err := layercache.Get(ctx, cache, "user:1", func(context.Context) (string, error) {
				loads++
				return "from the database", nil
			}, layercache.WithTTL(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			// Without keys the poison is served: that is what signing is
			// for, and it shows that the test can fail.
			want, wantLoads, wantErrors, wantRefused := "poison", 0, uint64(0), uint64(0)
			if signed {
				want, wantLoads, wantErrors, wantRefused = "from the database", 1, 1, 1
			}
			if v != want || loads != wantLoads {
				t.Errorf("Get = %q after %d loads, want %q after %d", v, loads, want, wantLoads)
			}
			st := cache.Stats()
			if st.Layers[1].Errors != wantErrors || l2.Stats().Unauthenticated != wantRefused {
				t.Errorf("redis layer errors = %d, refused = %d; want %d and %d", st.Layers[1].Errors, l2.Stats().Unauthenticated, wantErrors, wantRefused)
			}
			if st.Layers[1].Breaker != layercache.BreakerClosed {
				t.Errorf("a refused value opened the breaker: %v", st.Layers[1].Breaker)
			}
		})
	}
}

// mustCache wraps one layer in a cache, closed in Cleanup.
func mustCache(t *testing.T, layers ...driver.Layer) *layercache.Cache {
	t.Helper()
	c, err := layercache.New(layers, layercache.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSignedValues_KeyRotation(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	k1, k2 := testKey(1), testKey(2)
	layer := func(keys ...Key) *Layer { return newLayerT(t, Options{Client: c, Prefix: "app:", SigningKeys: keys}) }
	set := func(l *Layer, key string) {
		t.Helper()
		if err := l.Set(ctx, key, &driver.Entry{Payload: []byte(key)}); err != nil {
			t.Fatal(err)
		}
	}
	reads := func(l *Layer, key string) bool {
		t.Helper()
		e, err := l.Get(ctx, key)
		switch {
		case err == nil && e != nil && string(e.Payload) == key:
			return true
		case errors.Is(err, ErrUnauthenticated):
			return false
		}
		t.Fatalf("Get(%q) = %+v, %v", key, e, err)
		return false
	}
	keyIDOf := func(key string) keyring.ID {
		b, err := c.Get(ctx, "app:"+key).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var id keyring.ID
		copy(id[:], b[len(b)-keyring.TrailerSize:])
		return id
	}

	set(layer(k1), "old")     // before the rotation
	rotating := layer(k2, k1) // the new key first, the old one accepted
	set(rotating, "new")      // signed with the new key
	if got := keyIDOf("new"); got != keyring.IDOf(k2) {
		t.Errorf("new record's key id = %v, want the new key's", got)
	}
	if got := keyIDOf("old"); got != keyring.IDOf(k1) {
		t.Errorf("old record's key id = %v, want the old key's", got)
	}
	for _, tc := range []struct {
		name     string
		l        *Layer
		old, new bool
	}{
		{"old key only", layer(k1), true, false},
		{"both keys", rotating, true, true},
		{"both keys, old first", layer(k1, k2), true, true},
		{"new key only", layer(k2), false, true},
	} {
		if got := reads(tc.l, "old"); got != tc.old {
			t.Errorf("%s: reads the old record: %v, want %v", tc.name, got, tc.old)
		}
		if got := reads(tc.l, "new"); got != tc.new {
			t.Errorf("%s: reads the new record: %v, want %v", tc.name, got, tc.new)
		}
	}
}

func TestSignedValues_LayerWithoutKeysReadsSignedRecords(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	e := &driver.Entry{Payload: []byte("v"), Codec: "raw", Tags: []string{"t"}, ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	if err := newLayerT(t, Options{Client: c, Prefix: "app:", SigningKeys: []Key{testKey(1)}}).Set(ctx, "k", e); err != nil {
		t.Fatal(err)
	}
	got, err := newLayerT(t, Options{Client: c, Prefix: "app:"}).Get(ctx, "k")
	if err != nil || got == nil || string(got.Payload) != "v" || got.ExpiresAt != e.ExpiresAt {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestSignedValues_DeleteIfHoldsMatchesSignedRecord(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	l := newLayerT(t, Options{Client: newClient(t, s), Prefix: "app:", SigningKeys: []Key{testKey(1)}})
	ctx := context.Background()
	e1 := &driver.Entry{Payload: []byte("v1"), ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	e2 := &driver.Entry{Payload: []byte("v2"), ExpiresAt: time.Now().Add(time.Hour).UnixNano()}
	if err := l.Set(ctx, "k", e2); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteIfHolds(ctx, "k", e1); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "k"); got == nil {
		t.Fatal("DeleteIfHolds of another entry deleted the key")
	}
	if err := l.DeleteIfHolds(ctx, "k", e2); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "k"); got != nil {
		t.Fatal("DeleteIfHolds of the held entry left it")
	}
}

func TestSigningKeys_AreChecked(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for name, keys := range map[string][]Key{
		"short":     {Key(make([]byte, 31))},
		"duplicate": {testKey(1), testKey(2), testKey(1)},
	} {
		if _, err := New(Options{Client: c, SigningKeys: keys}); err == nil || !strings.Contains(err.Error(), "signing_keys[") {
			t.Errorf("layer, %s: %v; want an error naming signing_keys[i]", name, err)
		}
		if _, err := NewBus(BusOptions{Client: c, SigningKeys: keys}); err == nil || !strings.Contains(err.Error(), "signing_keys[") {
			t.Errorf("bus, %s: %v; want an error naming signing_keys[i]", name, err)
		}
	}
}

// TestKey_NeverPrinted checks every way a program might print options or
// configurations holding keys.
func TestKey_NeverPrinted(t *testing.T) {
	k := testKey(0xab)
	cfg := Config{Prefix: "p:", SigningKeys: []Key{k}}
	bus := BusConfig{BusOptions: BusOptions{SigningKeys: []Key{k}}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("opening", "config", cfg, "bus", bus, "key", k)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	l := newLayerT(t, Options{Client: c, SigningKeys: []Key{k}})
	b, err := NewBus(BusOptions{Client: c, SigningKeys: []Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":    fmt.Sprintf("%v", cfg),
		"%+v":   fmt.Sprintf("%+v %+v", cfg, bus),
		"%#v":   fmt.Sprintf("%#v %#v", cfg, bus),
		"%x":    fmt.Sprintf("%x", k),
		"%s":    fmt.Sprintf("%s", cfg.SigningKeys),
		"layer": fmt.Sprintf("%+v %+v", l, b),
		"slog":  logged.String(),
		"json":  string(js),
	}
	for how, out := range outputs {
		for _, form := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), string(k), "171 171", "171, 171"} {
			if strings.Contains(out, form) {
				t.Errorf("%s prints the key: %s", how, out)
			}
		}
	}
	if !strings.Contains(outputs["%v"], keyring.Redacted) {
		t.Errorf("%%v = %s; want the key shown as %s", outputs["%v"], keyring.Redacted)
	}
}

// testClusterTrust checks the access probes and signed records on a
// Cluster, where the probes' commands and a batch's keys reach several
// nodes.
func testClusterTrust(t *testing.T, client *goredis.ClusterClient) {
	ctx := context.Background()
	l := newLayerT(t, Options{Client: client, Prefix: "trust:", SigningKeys: []Key{testKey(1)}})
	if err := l.CheckAccess(ctx); err != nil {
		t.Fatalf("layer CheckAccess: %v", err)
	}
	if err := newCoordinatorT(t, CoordinatorOptions{Client: client, Namespace: "trust"}).CheckAccess(ctx); err != nil {
		t.Fatalf("coordinator CheckAccess: %v", err)
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, k := range keys {
		if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := l.GetMany(ctx, keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	for i, e := range es {
		if e == nil || string(e.Payload) != keys[i] {
			t.Errorf("GetMany[%d] = %+v", i, e)
		}
	}
	if err := client.Set(ctx, "trust:c", "forged", 0).Err(); err != nil {
		t.Fatal(err)
	}
	checkUnauthenticated(t, l, "c")
}

func TestKey_ReadsTextFormsWithOtherDecoders(t *testing.T) {
	k := testKey(0x5a)
	var cfg Config
	doc := fmt.Sprintf("url: redis://h\nsigning_keys: [%q, %q]\n", hex.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k))
	if err := (yamlBlock{"layers[1]", doc}).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.SigningKeys) != 2 || !bytes.Equal(cfg.SigningKeys[0], k) || !bytes.Equal(cfg.SigningKeys[1], k) {
		t.Errorf("YAML gave %d keys", len(cfg.SigningKeys))
	}
	var o struct{ Keys []Key }
	if err := json.Unmarshal([]byte(`{"Keys": ["base64:`+base64.StdEncoding.EncodeToString(k)+`"]}`), &o); err != nil || len(o.Keys) != 1 || !bytes.Equal(o.Keys[0], k) {
		t.Errorf("JSON: %v, %d keys", err, len(o.Keys))
	}
	err := (yamlBlock{"layers[1]", "signing_keys: [\"not a key, and secret\"]\n"}).Decode(&cfg)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad key: %v; want an error that does not show the text", err)
	}
}
