package layercache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

func TestClose_StopsEveryGoroutineTheCacheStarted(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l2 := newByteLayer()
	l2.hanging.Store(true) // background writes still waiting when Close is called
	c, err := layercache.New([]driver.Layer{newMemory(t, memoryOpts), l2},
		layercache.WithDegradation(layercache.Degradation{Timeout: 20 * time.Millisecond, FailureThreshold: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		key := fmt.Sprint("k", i)
		if _, err := layercache.Get(ctx, c, key, func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClose_WaitsForBackgroundWrites(t *testing.T) {
	l2 := newByteLayer()
	c, err := layercache.New([]driver.Layer{newMemory(t, memoryOpts), l2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		_, _ = layercache.Get(ctx, c, fmt.Sprint("k", i), func(context.Context) (int, error) { return i, nil })
	}
	must(t, c.Close())
	for i := range 50 {
		raw, ok := l2.data[fmt.Sprint("k", i)]
		if !ok {
			t.Fatalf("k%d not written by the time Close returned", i)
		}
		if _, err := envelope.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
	}
}
