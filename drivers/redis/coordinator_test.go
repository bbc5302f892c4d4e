package redis

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

func newCoordinatorT(t testing.TB, o CoordinatorOptions) *Coordinator {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger
	}
	if o.Namespace == "" {
		o.Namespace = "app"
	}
	c, err := NewCoordinator(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func acquire(t testing.TB, c *Coordinator, key string) driver.Lock {
	t.Helper()
	l, err := c.Acquire(context.Background(), key)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", key, err)
	}
	return l
}

var waitModes = []WaitMode{WaitNotify, WaitPoll}

func TestCoordinator_OneHolderAtATime(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s)})
	b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s)})

	la := acquire(t, a, "k")
	if la == nil {
		t.Fatal("first Acquire did not get the lock")
	}
	if lb := acquire(t, b, "k"); lb != nil {
		t.Fatal("second instance got a held lock")
	}
	if l := acquire(t, a, "k"); l != nil {
		t.Fatal("the holder's own instance got its held lock again")
	}
	if l := acquire(t, b, "other"); l == nil {
		t.Fatal("a lock on another key was refused")
	}
	if err := la.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(context.Background()); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if lb := acquire(t, b, "k"); lb == nil {
		t.Fatal("released lock could not be taken")
	}
}

func TestCoordinator_RenewalKeepsTheLockPastItsLease(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Lease: 300 * time.Millisecond, RenewEvery: 50 * time.Millisecond})
	b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Lease: 300 * time.Millisecond})
	l := acquire(t, a, "k")
	if l == nil {
		t.Fatal("no lock")
	}
	// Three leases long, the lock must stay a's all along.
	for range 18 {
		time.Sleep(50 * time.Millisecond)
		if lb := acquire(t, b, "k"); lb != nil {
			t.Fatal("the lock expired while its holder was alive")
		}
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Do(t, "EXISTS", a.LockKey("k")); got != int64(0) {
		t.Fatalf("lock key exists after Release: %v", got)
	}
}

func TestCoordinator_LapsedHolderNeverTouchesTheNewHoldersLock(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Lease: time.Second, RenewEvery: 20 * time.Millisecond})
	b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Lease: time.Minute})
	la := acquire(t, a, "k")
	// a's lease lapses (as after a long pause) and b takes the lock.
	s.Do(t, "DEL", a.LockKey("k"))
	lb := acquire(t, b, "k")
	if lb == nil {
		t.Fatal("b could not take the lapsed lock")
	}
	owner := s.Do(t, "GET", a.LockKey("k"))
	// a's renewals run meanwhile and must not cut b's lease to a's...
	time.Sleep(100 * time.Millisecond)
	if left := s.Do(t, "PTTL", a.LockKey("k")).(int64); left < 50_000 {
		t.Errorf("PTTL of b's lock = %dms; a's renewal touched it", left)
	}
	// ...nor may a's release delete it.
	if err := la.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Do(t, "GET", a.LockKey("k")); got != owner {
		t.Fatalf("b's lock after a's Release = %v, want %v", got, owner)
	}
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Do(t, "EXISTS", a.LockKey("k")); got != int64(0) {
		t.Fatal("b's Release left the lock")
	}
}

func TestCoordinator_WaitReturnsOnRelease(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	for _, mode := range waitModes {
		t.Run(string(mode), func(t *testing.T) {
			// A lease far longer than the test's patience: Wait must end
			// because of the release, not the expiry.
			a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Namespace: string(mode), Lease: time.Minute})
			b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Namespace: string(mode), Lease: time.Minute, Wait: mode})
			l := acquire(t, a, "k")
			var returned atomic.Bool
			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err := b.Wait(ctx, "k")
				returned.Store(true)
				done <- err
			}()
			time.Sleep(50 * time.Millisecond)
			if returned.Load() {
				t.Fatal("Wait returned while the lock was held")
			}
			if err := l.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Wait = %v, want nil after the release", err)
			}
			// A free lock does not make anyone wait.
			if err := b.Wait(context.Background(), "never-taken"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCoordinator_WaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	for _, mode := range waitModes {
		a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Namespace: string(mode), Lease: time.Minute})
		b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Namespace: string(mode), Wait: mode})
		acquire(t, a, "k")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := b.Wait(ctx, "k")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Wait = %v, want the context's error", mode, err)
		}
	}
}

func TestCoordinator_WaitEndsWhenADeadHoldersLeaseEnds(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	for _, mode := range waitModes {
		t.Run(string(mode), func(t *testing.T) {
			holderClient := goredis.NewClient(&goredis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
			a := newCoordinatorT(t, CoordinatorOptions{Client: holderClient, Namespace: string(mode), Lease: 300 * time.Millisecond})
			b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Namespace: string(mode), Wait: mode})
			if acquire(t, a, "k") == nil {
				t.Fatal("no lock")
			}
			// The holder's connection dies: no renewal, no release.
			_ = holderClient.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.Wait(ctx, "k"); err != nil {
				t.Fatalf("Wait = %v, want nil once the lease ended", err)
			}
			if acquire(t, b, "k") == nil {
				t.Fatal("the dead holder's lock could not be taken after its lease")
			}
		})
	}
}

func TestCoordinator_SurvivesLossOfTheScriptCache(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Lease: 300 * time.Millisecond, RenewEvery: 20 * time.Millisecond})
	l := acquire(t, a, "k")
	s.Do(t, "SCRIPT", "FLUSH")
	time.Sleep(100 * time.Millisecond) // renewals, each finding no script
	if left := s.Do(t, "PTTL", a.LockKey("k")).(int64); left < 200 {
		t.Errorf("PTTL = %dms: renewals did not reload their script", left)
	}
	s.Do(t, "SCRIPT", "FLUSH")
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Do(t, "EXISTS", a.LockKey("k")); got != int64(0) {
		t.Fatal("Release without a cached script left the lock")
	}
}

func TestCoordinator_RedisRestartWhileHeld(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), Lease: time.Second, RenewEvery: 50 * time.Millisecond})
	b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s)})
	l := acquire(t, a, "k")
	s.Restart() // empty data set, empty script cache
	time.Sleep(150 * time.Millisecond)
	// The lock was lost with the data; the holder must not take or delete
	// the lock another instance holds now.
	lb := acquire(t, b, "k")
	if lb == nil {
		t.Fatal("the lock lost with the restart could not be taken")
	}
	owner := s.Do(t, "GET", a.LockKey("k"))
	if err := l.Release(context.Background()); err != nil {
		t.Fatalf("Release after the restart: %v", err)
	}
	if got := s.Do(t, "GET", a.LockKey("k")); got != owner {
		t.Fatalf("the old holder's Release changed the new holder's lock: %v, want %v", got, owner)
	}
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if acquire(t, a, "k") == nil {
		t.Fatal("the old holder's instance cannot lock after the restart")
	}
}

func TestCoordinator_FailsFastAfterAFailure(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), RetryAfter: time.Hour})
	s.Kill()
	if _, err := a.Acquire(context.Background(), "k"); err == nil {
		t.Fatal("Acquire with the server down succeeded")
	}
	if _, err := a.Acquire(context.Background(), "k"); !errors.Is(err, ErrCoordinatorUnavailable) {
		t.Fatalf("second Acquire = %v, want ErrCoordinatorUnavailable", err)
	}
	if err := a.Wait(context.Background(), "k"); !errors.Is(err, ErrCoordinatorUnavailable) {
		t.Fatalf("Wait = %v, want ErrCoordinatorUnavailable", err)
	}
	// A caller's own cancellation does not start a back-off.
	s.Restart()
	b := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s), RetryAfter: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Acquire(ctx, "k"); err == nil {
		t.Fatal("Acquire with a cancelled context succeeded")
	}
	if l := acquire(t, b, "k"); l == nil {
		t.Fatal("no lock after a cancelled Acquire")
	}
}

func TestCoordinator_NotifyWithoutChannelRightsPolls(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := aclClient(t, s, "nochannels", "resetchannels")
	a := newCoordinatorT(t, CoordinatorOptions{Client: c, Lease: time.Minute})
	b := newCoordinatorT(t, CoordinatorOptions{Client: c, Lease: time.Minute})
	l := acquire(t, a, "k")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- b.Wait(ctx, "k")
	}()
	time.Sleep(50 * time.Millisecond)
	// The release's announcement is refused; the lock is released anyway.
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	subErr := b.subErr
	b.mu.Unlock()
	if subErr == nil || !strings.Contains(subErr.Error(), "NOPERM") {
		t.Errorf("subscription error = %v, want NOPERM", subErr)
	}
}

func TestNewCoordinator_RejectsImpossibleOptions(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewCoordinator(CoordinatorOptions{}); err == nil {
		t.Error("NewCoordinator without a client succeeded")
	}
	for _, tc := range []struct {
		o    CoordinatorOptions
		want string
	}{
		{CoordinatorOptions{Lease: -1}, "lease -1ns is negative"},
		{CoordinatorOptions{Lease: time.Millisecond}, "shorter than 3ms"},
		{CoordinatorOptions{Lease: time.Second, RenewEvery: time.Second}, "renew_every"},
		{CoordinatorOptions{PollMin: time.Second, PollMax: time.Millisecond}, "poll_max"},
		{CoordinatorOptions{Wait: "sometimes"}, `wait "sometimes"`},
		{CoordinatorOptions{Timeout: -1, RetryAfter: -1}, "retry_after"},
	} {
		tc.o.Client = c
		if _, err := NewCoordinator(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCoordinator(%+v) = %v, want an error containing %q", tc.o, err, tc.want)
		}
	}
	co, err := NewCoordinator(CoordinatorOptions{Client: c, Lease: 900 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	if co.o.RenewEvery != 300*time.Millisecond || co.o.Wait != WaitNotify || co.o.Timeout != DefaultTimeout {
		t.Errorf("defaults: %+v", co.o)
	}
}

func TestOpenCoordinator_DecodesItsBlock(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	stack := driver.Stack{Namespace: "app", Layers: []driver.Layer{newLayerT(t, Options{Client: client})}}
	d, _ := driver.Lookup("redis")
	open := func(text string) (*Coordinator, error) {
		co, err := d.(driver.CoordinatorDriver).OpenCoordinator(context.Background(), nsBlock{yamlBlock{"singleflight", text}, "app"}, stack)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = co.Close() })
		return co.(*Coordinator), nil
	}
	co, err := open("lease: 2s\nrenew_every: 500ms\nwait: poll\npoll_max: 20ms\n")
	if err != nil {
		t.Fatal(err)
	}
	if co.owned || co.o.Lease != 2*time.Second || co.o.RenewEvery != 500*time.Millisecond || co.o.Wait != WaitPoll ||
		co.o.PollMax != 20*time.Millisecond || co.LockKey("k") != "layercache:app:lock:k" {
		t.Errorf("decoded %+v, owned %v, lock key %q", co.o, co.owned, co.LockKey("k"))
	}
	if l := acquire(t, co, "k"); l == nil {
		t.Fatal("no lock through the shared client")
	}
	own, err := open("url: " + s.URL() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !own.owned || own.o.Wait != WaitNotify {
		t.Errorf("own client: owned %v, wait %q", own.owned, own.o.Wait)
	}
	for text, want := range map[string]string{
		"wait: often\n":                  `wait "often"`,
		"lease: 1ms\n":                   "3ms",
		"leese: 1s\n":                    "leese",
		"url: redis://x:1\nlease: -1s\n": "negative",
	} {
		if _, err := open(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenCoordinator(%q) = %v, want an error containing %q", text, err, want)
		}
	}
}

func TestCoordinator_WaitRefusesAKeyWithoutExpiry(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newCoordinatorT(t, CoordinatorOptions{Client: newClient(t, s)})
	s.Do(t, "SET", a.LockKey("k"), "not a lock")
	if err := a.Wait(context.Background(), "k"); err == nil || !strings.Contains(err.Error(), "no expiry") {
		t.Fatalf("Wait = %v, want an error", err)
	}
}
