package layercache_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/drivers/memory"
)

// byteLayer is a layer outside the process as the core sees it: it stores
// envelope-encoded bytes, so values cross the codec on every read. It can be
// made to fail or hang, to exercise the degradation policy without a server.
type byteLayer struct {
	mu      sync.Mutex
	data    map[string][]byte
	failing atomic.Bool // every operation returns errDown
	hanging atomic.Bool // every operation blocks until its context ends
	calls   atomic.Int64
}

var errDown = errors.New("layer down")

func newByteLayer() *byteLayer { return &byteLayer{data: make(map[string][]byte)} }

func (b *byteLayer) enter(ctx context.Context) error {
	b.calls.Add(1)
	if b.hanging.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if b.failing.Load() {
		return errDown
	}
	return nil
}

func (b *byteLayer) Get(ctx context.Context, key string) (*driver.Entry, error) {
	if err := b.enter(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	raw, ok := b.data[key]
	b.mu.Unlock()
	if !ok {
		return nil, nil
	}
	e, err := envelope.Unmarshal(bytes.Clone(raw)) // the payload is the caller's
	if err != nil {
		return nil, err
	}
	if e.Expired(time.Now().UnixNano()) {
		return nil, nil
	}
	return e, nil
}

func (b *byteLayer) Set(ctx context.Context, key string, e *driver.Entry) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	raw, err := envelope.Marshal(e, envelope.Options{})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.data[key] = raw
	b.mu.Unlock()
	return nil
}

func (b *byteLayer) Delete(ctx context.Context, keys ...string) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		delete(b.data, k)
	}
	return nil
}

func (b *byteLayer) InvalidateTags(ctx context.Context, tags ...string) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, raw := range b.data {
		e, err := envelope.Unmarshal(raw)
		if err != nil {
			continue
		}
		for _, t := range tags {
			if e.HasTag(t) {
				delete(b.data, k)
				break
			}
		}
	}
	return nil
}

func (b *byteLayer) Clear(ctx context.Context) error {
	if err := b.enter(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	clear(b.data)
	b.mu.Unlock()
	return nil
}

func (b *byteLayer) put(key string, raw []byte) {
	b.mu.Lock()
	b.data[key] = raw
	b.mu.Unlock()
}

func (b *byteLayer) has(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.data[key]
	return ok
}

func (b *byteLayer) Name() string { return "bytes" }
func (b *byteLayer) Close() error { return nil }

func newMemory(t testing.TB, o memory.Options) *memory.Layer {
	t.Helper()
	l, err := memory.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newCache(t testing.TB, layers []driver.Layer, opts ...layercache.Option) *layercache.Cache {
	t.Helper()
	c, err := layercache.New(layers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// memCache is a cache over one memory layer.
func memCache(t testing.TB, opts ...layercache.Option) (*layercache.Cache, *memory.Layer) {
	l1 := newMemory(t, memory.Options{MaxSize: 1000})
	return newCache(t, []driver.Layer{l1}, opts...), l1
}

// eventually polls cond until it holds or a generous deadline passes. It
// waits for something to happen; it never asserts how long it took.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var memoryOpts = memory.Options{MaxSize: 1000}
