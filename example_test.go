package layercache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
)

func ExampleGet() {
	l1, _ := memory.New(memory.Options{MaxSize: 10_000})
	c, _ := layercache.New([]driver.Layer{l1})
	defer c.Close()
	ctx := context.Background()

	type User struct{ Name string }
	load := func(ctx context.Context) (User, error) {
		fmt.Println("loading user 42")
		return User{Name: "Ada"}, nil
	}
	for range 3 {
		u, err := layercache.Get(ctx, c, "user:42", load, layercache.WithTTL(time.Minute))
		fmt.Println(u.Name, err)
	}
	// Output:
	// loading user 42
	// Ada <nil>
	// Ada <nil>
	// Ada <nil>
}

func ExampleErrNotFound() {
	l1, _ := memory.New(memory.Options{})
	c, _ := layercache.New([]driver.Layer{l1}, layercache.WithDefaults(layercache.WithNegativeTTL(30*time.Second)))
	defer c.Close()

	missing := func(ctx context.Context) (string, error) {
		fmt.Println("asking the database")
		return "", layercache.ErrNotFound
	}
	for range 2 {
		_, err := layercache.Get(context.Background(), c, "user:404", missing)
		fmt.Println(errors.Is(err, layercache.ErrNotFound))
	}
	// Output:
	// asking the database
	// true
	// true
}

func ExampleCache_InvalidateTags() {
	l1, _ := memory.New(memory.Options{})
	c, _ := layercache.New([]driver.Layer{l1})
	defer c.Close()
	ctx := context.Background()

	_ = layercache.Set(ctx, c, "user:1", "Ada", layercache.WithTags("users"))
	_ = layercache.Set(ctx, c, "team:1", "Core", layercache.WithTags("teams"))
	_ = c.InvalidateTags(ctx, "users")

	_, ok, _ := layercache.Lookup[string](ctx, c, "user:1")
	fmt.Println("user:1 cached:", ok)
	_, ok, _ = layercache.Lookup[string](ctx, c, "team:1")
	fmt.Println("team:1 cached:", ok)
	// Output:
	// user:1 cached: false
	// team:1 cached: true
}
