package drivertest_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/drivertest"
	"github.com/layercache/layercache/driver/envelope"
)

// The suite is checked against two reference layers that follow the
// contract, one of each kind, and against broken variants of them that it
// must fail.

// goLayer is an in-process reference layer: a map of entry pointers.
type goLayer struct {
	mu sync.Mutex
	m  map[string]*driver.Entry
}

func newGoLayer() *goLayer { return &goLayer{m: map[string]*driver.Entry{}} }

func (l *goLayer) Get(_ context.Context, key string) (*driver.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	if e != nil && e.Expired(time.Now().UnixNano()) {
		return nil, nil
	}
	return e, nil
}

func (l *goLayer) Set(_ context.Context, key string, e *driver.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[key] = e
	return nil
}

func (l *goLayer) Delete(_ context.Context, keys ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.m, k)
	}
	return nil
}

func (l *goLayer) Clear(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.m)
	return nil
}

func (l *goLayer) InvalidateTags(_ context.Context, tags ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(_ string, e *driver.Entry) bool {
		return slices.ContainsFunc(tags, e.HasTag)
	})
	return nil
}

func (l *goLayer) Close() error { return nil }
func (l *goLayer) InProcess()   {}
func (l *goLayer) Name() string { return "go" }

// byteLayer is a reference layer outside the process: it keeps envelopes.
type byteLayer struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newByteLayer() *byteLayer { return &byteLayer{m: map[string][]byte{}} }

func (l *byteLayer) Get(_ context.Context, key string) (*driver.Entry, error) {
	l.mu.Lock()
	b, ok := l.m[key]
	l.mu.Unlock()
	if !ok {
		return nil, nil
	}
	e, err := envelope.Unmarshal(bytes.Clone(b)) // the payload is the caller's
	if err != nil {
		return nil, err
	}
	if e.Expired(time.Now().UnixNano()) {
		return nil, nil
	}
	return e, nil
}

func (l *byteLayer) Set(ctx context.Context, key string, e *driver.Entry) error {
	return l.SetMany(ctx, []string{key}, []*driver.Entry{e})
}

func (l *byteLayer) SetMany(ctx context.Context, keys []string, entries []*driver.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range entries {
		if e.Expired(now) {
			delete(l.m, keys[i])
			continue
		}
		b, err := envelope.Marshal(e, envelope.Options{CompressAbove: 1024})
		if err != nil {
			return err
		}
		l.m[keys[i]] = b
	}
	return nil
}

func (l *byteLayer) GetMany(ctx context.Context, keys []string) ([]*driver.Entry, error) {
	es := make([]*driver.Entry, len(keys))
	for i, k := range keys {
		e, err := l.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		es[i] = e
	}
	return es, nil
}

func (l *byteLayer) Delete(_ context.Context, keys ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.m, k)
	}
	return nil
}

func (l *byteLayer) Clear(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.m)
	return nil
}

func (l *byteLayer) InvalidateTags(_ context.Context, tags ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(_ string, b []byte) bool {
		e, err := envelope.Unmarshal(b)
		return err == nil && slices.ContainsFunc(tags, e.HasTag)
	})
	return nil
}

func (l *byteLayer) Ping(ctx context.Context) error { return ctx.Err() }
func (l *byteLayer) Timeout() time.Duration         { return time.Second }
func (l *byteLayer) Name() string                   { return "bytes" }
func (l *byteLayer) Close() error                   { return nil }
func (l *byteLayer) As(any) bool                    { return false }

func (l *byteLayer) corrupt(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[key] = []byte("LC\x01 not a record")
}

var (
	_ driver.InProcess      = (*goLayer)(nil)
	_ driver.Clearer        = (*goLayer)(nil)
	_ driver.TagInvalidator = (*goLayer)(nil)
	_ driver.Namer          = (*goLayer)(nil)
	_ driver.BatchGetter    = (*byteLayer)(nil)
	_ driver.BatchSetter    = (*byteLayer)(nil)
	_ driver.Clearer        = (*byteLayer)(nil)
	_ driver.TagInvalidator = (*byteLayer)(nil)
	_ driver.Pinger         = (*byteLayer)(nil)
	_ driver.Timeouter      = (*byteLayer)(nil)
	_ driver.Namer          = (*byteLayer)(nil)
	_ driver.Aser           = (*byteLayer)(nil)
)

// runBytes runs the suite on byte layers that open makes from a fresh
// reference layer.
func runBytes(t *testing.T, wrap func(*byteLayer) driver.Layer) {
	var mu sync.Mutex
	current := map[string]*byteLayer{}
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
		l := newByteLayer()
		mu.Lock()
		current[t.Name()] = l
		mu.Unlock()
		return wrap(l)
	}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
		mu.Lock()
		l := current[t.Name()]
		mu.Unlock()
		l.corrupt(key)
	}})
}

func TestReferenceInProcessLayerPasses(t *testing.T) {
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer { return newGoLayer() }, drivertest.Options{})
}

func TestReferenceByteLayerPasses(t *testing.T) {
	runBytes(t, func(l *byteLayer) driver.Layer { return l })
}

// Broken variants, each with the subtest that must catch it.

type expiryBlind struct{ *byteLayer }

func (l expiryBlind) Get(_ context.Context, key string) (*driver.Entry, error) {
	l.mu.Lock()
	b, ok := l.m[key]
	l.mu.Unlock()
	if !ok {
		return nil, nil
	}
	return envelope.Unmarshal(b)
}

// Set keeps expired entries as well, as a store relying on its own expiry
// with a minimum lifetime would.
func (l expiryBlind) Set(_ context.Context, key string, e *driver.Entry) error {
	b, err := envelope.Marshal(e, envelope.Options{})
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[key] = b
	return nil
}

type copying struct{ *goLayer }

func (l copying) Get(ctx context.Context, key string) (*driver.Entry, error) {
	e, err := l.goLayer.Get(ctx, key)
	if e == nil {
		return e, err
	}
	c := *e
	return &c, err
}

type reversedBatch struct{ *byteLayer }

func (l reversedBatch) GetMany(ctx context.Context, keys []string) ([]*driver.Entry, error) {
	es, err := l.byteLayer.GetMany(ctx, keys)
	slices.Reverse(es)
	return es, err
}

type strictDelete struct{ *byteLayer }

func (l strictDelete) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return errors.New("ERR wrong number of arguments for 'del' command")
	}
	return l.byteLayer.Delete(ctx, keys...)
}

type substringTags struct{ *byteLayer }

func (l substringTags) InvalidateTags(_ context.Context, tags ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	maps.DeleteFunc(l.m, func(_ string, b []byte) bool {
		e, err := envelope.Unmarshal(b)
		return err == nil && slices.ContainsFunc(tags, func(t string) bool {
			return strings.Contains(strings.Join(e.Tags, ","), t)
		})
	})
	return nil
}

type panicsOnCorrupt struct{ *byteLayer }

func (l panicsOnCorrupt) Get(ctx context.Context, key string) (*driver.Entry, error) {
	e, err := l.byteLayer.Get(ctx, key)
	if err != nil {
		panic(err)
	}
	return e, nil
}

type emptyPayloadToNil struct{ *byteLayer }

func (l emptyPayloadToNil) Get(ctx context.Context, key string) (*driver.Entry, error) {
	e, err := l.byteLayer.Get(ctx, key)
	if e != nil && len(e.Payload) == 0 {
		e.Payload = nil
	}
	return e, err
}

var brokenLayers = map[string]struct {
	open    func() driver.Layer
	subtest string
}{
	"expiry-blind":      {func() driver.Layer { return expiryBlind{newByteLayer()} }, "EntryIsGoneOnceExpiresAtPasses"},
	"expired-set":       {func() driver.Layer { return expiryBlind{newByteLayer()} }, "ExpiredEntryIsNeverReturned"},
	"copying":           {func() driver.Layer { return copying{newGoLayer()} }, "InProcessHitReturnsStoredEntry"},
	"reversed-batch":    {func() driver.Layer { return reversedBatch{newByteLayer()} }, "BatchGetterAgreesWithGet"},
	"strict-delete":     {func() driver.Layer { return strictDelete{newByteLayer()} }, "DeleteOfAbsentKeysIsNotAnError"},
	"substring-tags":    {func() driver.Layer { return substringTags{newByteLayer()} }, "TagInvalidatorRemovesExactlyTaggedEntries"},
	"panics-on-corrupt": {func() driver.Layer { return panicsOnCorrupt{newByteLayer()} }, "CorruptValueIsErrorOrMiss"},
	"empty-payload-nil": {func() driver.Layer { return emptyPayloadToNil{newByteLayer()} }, "RoundTripKeepsEveryField"},
}

const brokenEnv = "DRIVERTEST_BROKEN_LAYER"

// TestBrokenLayerHelper runs the suite on one broken layer when started by
// TestSuiteFailsBrokenLayers; on its own it does nothing.
func TestBrokenLayerHelper(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only as a child of TestSuiteFailsBrokenLayers")
	}
	b := brokenLayers[name]
	var mu sync.Mutex
	var current *byteLayer
	drivertest.RunLayerTests(t, func(t *testing.T) driver.Layer {
		l := b.open()
		mu.Lock()
		defer mu.Unlock()
		current = nil
		switch v := l.(type) {
		case panicsOnCorrupt:
			current = v.byteLayer
		}
		return l
	}, drivertest.Options{Corrupt: func(t *testing.T, key string) {
		mu.Lock()
		defer mu.Unlock()
		if current == nil {
			t.Skip("this broken layer cannot be corrupted")
		}
		current.corrupt(key)
	}})
}

func TestSuiteFailsBrokenLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a test process per broken layer")
	}
	for name, b := range brokenLayers {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenLayerHelper$/^"+b.subtest+"$", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite on the %s layer: %v, want a failing exit\n%s", name, err, out)
			}
			if want := "--- FAIL: TestBrokenLayerHelper/" + b.subtest; !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}
