package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/internal/redistest"
)

// appRules are the ACL rules of a user limited to namespace "app": its
// keys, its channels, and the commands the layer, bus and coordinator run
// (those their scripts run included), nothing else.
var appRules = []string{
	"~app:*", "~layercache:app:*", "&layercache:app:*",
	"+ping", "+get", "+mget", "+set", "+unlink", "+del", "+zrange", "+rename", "+pttl", "+scan",
	"+eval", "+evalsha", "+getrange", "+time", "+zrangebyscore", "+zrem", "+zscore", "+zadd", "+pexpire",
	"+publish", "+subscribe", "+unsubscribe",
}

// without returns rules minus drop.
func without(rules []string, drop ...string) []string {
	var out []string
	for _, r := range rules {
		keep := true
		for _, d := range drop {
			keep = keep && r != d
		}
		if keep {
			out = append(out, r)
		}
	}
	return out
}

// stackConfig is a memory + redis stack with bus and coordinator sharing
// the layer's connection, logged in as user.
func stackConfig(t *testing.T, url, user, password string, extra string) *config.Config {
	t.Helper()
	doc := fmt.Sprintf(`namespace: app
layers:
  - driver: memory
  - driver: redis
    url: %q
    username: %q
    password: %q
    timeout: 2s
%sbus: { driver: redis }
singleflight: { driver: redis, lease: 5s }
`, url, user, password, extra)
	cfg, err := config.Parse([]byte(doc), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openStack(t *testing.T, cfg *config.Config) (*layercache.Cache, error) {
	t.Helper()
	c, err := layercache.OpenConfig(cfg, layercache.WithLogger(quietLogger))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// exerciseStack runs what two instances of a service do through layer, bus
// and coordinator, and fails the test if any of it does not work.
func exerciseStack(t *testing.T, a, b *layercache.Cache) {
	t.Helper()
	ctx := context.Background()
	var loads atomic.Int64
	load := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { loads.Add(1); return v, nil }
	}

	// Layer: a's write is b's hit.
	if err := layercache.Set(ctx, a, "user:1", "alice", layercache.WithTTL(time.Hour), layercache.WithTags("users")); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if v, err := layercache.Get(ctx, b, "user:1", load("loaded")); err != nil || v != "alice" || loads.Load() != 0 {
		t.Fatalf("b's Get = %q, %v after %d loads; want a's value from Redis", v, err, loads.Load())
	}
	// Bus: a's delete reaches b's L1 (and Redis).
	if err := a.Delete(ctx, "user:1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	waitFor(t, "b to drop user:1", func() bool {
		_, ok, _ := layercache.Lookup[string](ctx, b, "user:1")
		return !ok
	})
	// Tags.
	if err := layercache.Set(ctx, a, "user:2", "bob", layercache.WithTTL(time.Hour), layercache.WithTags("users")); err != nil {
		t.Fatal(err)
	}
	if err := b.InvalidateTags(ctx, "users"); err != nil {
		t.Fatalf("InvalidateTags: %v", err)
	}
	waitFor(t, "a to drop user:2", func() bool {
		_, ok, _ := layercache.Lookup[string](ctx, a, "user:2")
		return !ok
	})
	// Coordinator: while a loads, b waits for a's value instead of loading.
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := layercache.Get(ctx, a, "slow", func(context.Context) (string, error) {
			close(started)
			<-release
			loads.Add(1)
			return "a's load", nil
		}, layercache.WithTTL(time.Hour))
		done <- err
	}()
	<-started
	bDone := make(chan string, 1)
	go func() {
		v, err := layercache.Get(ctx, b, "slow", load("b's load"), layercache.WithTTL(time.Hour))
		if err != nil {
			v = err.Error()
		}
		bDone <- v
	}()
	time.Sleep(20 * time.Millisecond) // let b reach the lock; the outcome does not depend on it
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := <-bDone; v != "a's load" || loads.Load() != 1 {
		t.Fatalf("b got %q after %d loads; want a's value from one load", v, loads.Load())
	}
	for i, c := range []*layercache.Cache{a, b} {
		for _, l := range c.Stats().Layers {
			if l.Errors != 0 {
				t.Errorf("cache %d: layer %s counted %d errors", i, l.Name, l.Errors)
			}
		}
		if st := c.Stats(); st.BusErrors != 0 {
			t.Errorf("cache %d: %d bus errors", i, st.BusErrors)
		}
	}
}

func TestACL_NamespaceUserRunsLayerBusAndCoordinator(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	s.AddUser(t, "app", "pw", appRules...)
	cfg := stackConfig(t, s.URL(), "app", "pw", "")
	a, err := openStack(t, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b, err := openStack(t, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	exerciseStack(t, a, b)
	if n := s.Do(t, "ACL", "LOG").([]any); len(n) != 0 {
		t.Errorf("Redis refused the user %d times: %v", len(n), n)
	}
}

func TestACL_UserWithoutARightFailsOpenNamingIt(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	for i, tc := range []struct {
		name     string
		rules    []string
		password string
		want     []string
	}{
		{"keys of another namespace", append(without(appRules, "~app:*"), "~other:*"), "pw",
			[]string{"layer", "keys app:*", "~app:*"}},
		{"no GET", without(appRules, "+get"), "pw", []string{"layer", "run GET", "+get"}},
		{"no EVAL", without(appRules, "+eval"), "pw", []string{"layer", "run EVAL", "+eval"}},
		{"no ZADD in scripts", without(appRules, "+zadd"), "pw", []string{"layer", "ZADD in a script", "+zadd"}},
		{"no lock keys", without(appRules, "~layercache:app:*"), "pw",
			[]string{"coordinator", "keys layercache:app:lock:*", "~layercache:app:lock:*"}},
		{"no channels", without(appRules, "&layercache:app:*"), "pw", []string{"bus", "channel layercache:app:bus", "&layercache:app:bus"}},
		{"no PUBLISH", without(appRules, "+publish"), "pw", []string{"bus", "layercache:app:bus", "NOPERM"}},
		{"wrong password", appRules, "wrong", []string{"credentials", "WRONGPASS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprint("u", i)
			s.AddUser(t, user, "pw", tc.rules...)
			_, err := openStack(t, stackConfig(t, s.URL(), user, tc.password, ""))
			if !errors.Is(err, ErrPermission) {
				t.Fatalf("Open = %v; want an error wrapping ErrPermission", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCheckAccess_UnreachableServerIsNotAPermissionError(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := newClient(t, s)
	l := newLayerT(t, Options{Client: c, Prefix: "app:", Timeout: time.Second})
	co := newCoordinatorT(t, CoordinatorOptions{Client: c, Namespace: "app"})
	ctx := context.Background()
	if err := l.CheckAccess(ctx); err != nil {
		t.Fatalf("layer, default user: %v", err)
	}
	if err := co.CheckAccess(ctx); err != nil {
		t.Fatalf("coordinator, default user: %v", err)
	}
	s.Kill()
	if err := l.CheckAccess(ctx); err != nil {
		t.Errorf("layer, server down: %v; want nil, the breaker's concern", err)
	}
	if err := co.CheckAccess(ctx); err != nil {
		t.Errorf("coordinator, server down: %v", err)
	}
}

// TestCheckAccess_ChangesNothing runs the checks on a server with data
// under the probe's names' neighbours and compares the data set.
func TestCheckAccess_ChangesNothing(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := newClient(t, s)
	ctx := context.Background()
	l := newLayerT(t, Options{Client: c, Prefix: "app:"})
	if err := l.Set(ctx, "k", benchEntry(10)); err != nil {
		t.Fatal(err)
	}
	before := s.Do(t, "DBSIZE")
	for range 3 {
		if err := l.CheckAccess(ctx); err != nil {
			t.Fatal(err)
		}
		if err := newCoordinatorT(t, CoordinatorOptions{Client: c, Namespace: "app"}).CheckAccess(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := s.Do(t, "DBSIZE"); after != before {
		t.Errorf("DBSIZE %v before the checks, %v after", before, after)
	}
	if n := s.Do(t, "EXISTS", "app:"+probeSuffix, "layercache:app:lock:"+probeSuffix); n != int64(0) {
		t.Errorf("probe keys exist: %v", n)
	}
}

var _ = memory.New // the stacks above open "memory" layers by name
