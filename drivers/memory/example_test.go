package memory_test

import (
	"context"
	"fmt"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

func Example() {
	l, err := memory.New(memory.Options{TTL: time.Minute, MaxSize: 1000})
	if err != nil {
		panic(err)
	}
	defer l.Close()

	ctx := context.Background()
	e := &driver.Entry{
		Value:     "Ada Lovelace",
		ExpiresAt: time.Now().Add(time.Hour).UnixNano(), // the layer's TTL cuts this to a minute
		Tags:      []string{"users"},
	}
	_ = l.Set(ctx, "user:42", e)

	got, _ := l.Get(ctx, "user:42")
	fmt.Println(got.Value, got == e)

	_ = l.InvalidateTags(ctx, "users")
	got, _ = l.Get(ctx, "user:42")
	fmt.Println(got == nil)
	// Output:
	// Ada Lovelace true
	// true
}
