package redis

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// WaitMode is how [Coordinator.Wait] learns that a lock was released.
type WaitMode string

// The ways of waiting for a lock.
const (
	// WaitNotify subscribes to a per-namespace channel on which Release
	// announces the key it released, and checks the lock again at the
	// latest when its lease would end (and at least once a second), in
	// case a notification was lost. A waiter wakes about one round trip
	// after the release.
	WaitNotify WaitMode = "notify"

	// WaitPoll checks the lock with PTTL at growing intervals, from
	// CoordinatorOptions.PollMin to PollMax. It needs no pub/sub and no
	// channel rights; a waiter wakes up to PollMax after the release.
	WaitPoll WaitMode = "poll"
)

// The defaults of [CoordinatorOptions].
const (
	DefaultLease      = 5 * time.Second
	DefaultPollMin    = 2 * time.Millisecond
	DefaultPollMax    = 50 * time.Millisecond
	DefaultRetryAfter = time.Second
)

// notifyRecheck bounds how long a notified waiter goes without looking at
// the lock itself: a notification lost to a reconnection then costs at most
// this, not a whole lease.
const notifyRecheck = time.Second

// ErrCoordinatorUnavailable is wrapped by the error of an Acquire or Wait
// made within CoordinatorOptions.RetryAfter of a failed command: the cache
// then loads without coordination at once instead of waiting for a timeout
// on every miss.
var ErrCoordinatorUnavailable = errors.New("layercache/redis: coordinator unavailable")

// CoordinatorOptions configure a [Coordinator] built with [NewCoordinator].
// The fields with a yaml tag are the keys of a "singleflight" block.
type CoordinatorOptions struct {
	// Client holds the locks. It is required. The coordinator does not
	// close it.
	Client goredis.UniversalClient `yaml:"-"`

	// Namespace names the lock keys ("layercache:NAMESPACE:lock:KEY") and
	// the release channel ("layercache:NAMESPACE:released"), so that only
	// caches of the same namespace coordinate. Default: "".
	Namespace string `yaml:"-"`

	// Lease is how long a lock outlives a holder that stopped renewing it
	// (a crashed process, a lost connection): another instance loads after
	// at most this long. Default: 5s. Negative is an error; at least 3ms.
	Lease time.Duration `yaml:"lease"`

	// RenewEvery is how often a held lock's lease is extended while the
	// load runs. Default: Lease/3. Must be less than Lease.
	RenewEvery time.Duration `yaml:"renew_every"`

	// Wait chooses how a waiter learns of a release: "notify" or "poll"
	// (see [WaitNotify], [WaitPoll]). Default: "notify".
	Wait WaitMode `yaml:"wait"`

	// PollMin and PollMax bound the intervals between checks in poll mode,
	// and in notify mode while the subscription is not yet confirmed.
	// Each interval doubles, with jitter, up to PollMax, and never exceeds
	// the lease's remaining time. Default: 2ms and 50ms.
	PollMin time.Duration `yaml:"poll_min"`
	PollMax time.Duration `yaml:"poll_max"`

	// Timeout bounds each command. Default: 100ms. Negative is an error.
	Timeout time.Duration `yaml:"timeout"`

	// RetryAfter is how long Acquire and Wait fail at once, wrapping
	// [ErrCoordinatorUnavailable], after a command failed: with Redis down,
	// a miss then costs the loader's time, not also a timeout. Default: 1s.
	RetryAfter time.Duration `yaml:"retry_after"`

	// Logger receives problems that have no caller to return to: lost
	// leases, failed renewals. Default: slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

func (o *CoordinatorOptions) withDefaults() (CoordinatorOptions, error) {
	c := *o
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"lease", c.Lease}, {"renew_every", c.RenewEvery}, {"poll_min", c.PollMin}, {"poll_max", c.PollMax}, {"timeout", c.Timeout}, {"retry_after", c.RetryAfter}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.key, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = c.Lease / 3
	}
	if c.PollMin == 0 {
		c.PollMin = DefaultPollMin
	}
	if c.PollMax == 0 {
		c.PollMax = max(DefaultPollMax, c.PollMin)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.Wait == "" {
		c.Wait = WaitNotify
	}
	switch {
	case c.Lease < 3*time.Millisecond:
		// Redis counts in milliseconds, and the renewal needs room.
		errs = append(errs, fmt.Errorf("lease %v is shorter than 3ms", c.Lease))
	case c.RenewEvery >= c.Lease:
		errs = append(errs, fmt.Errorf("renew_every %v must be less than lease %v", c.RenewEvery, c.Lease))
	}
	if c.PollMax < c.PollMin {
		errs = append(errs, fmt.Errorf("poll_max %v is less than poll_min %v", c.PollMax, c.PollMin))
	}
	if c.Wait != WaitNotify && c.Wait != WaitPoll {
		errs = append(errs, fmt.Errorf("wait %q is neither %q nor %q", c.Wait, WaitNotify, WaitPoll))
	}
	return c, errors.Join(errs...)
}

// Coordinator makes a miss across instances load once, with a lock per key
// in Redis: SET NX with a lease, renewed while the load runs, released by
// compare-and-delete so that a holder whose lease ran out never removes a
// lock another instance has taken since. It is safe for concurrent use.
//
// The scripts run with EVALSHA and fall back to EVAL when the server does
// not know them (after a restart or SCRIPT FLUSH).
type Coordinator struct {
	client  goredis.UniversalClient
	owned   bool
	o       CoordinatorOptions
	prefix  string // of lock keys
	channel string // of release notifications; "" in poll mode

	downUntil atomic.Int64 // Unix nanoseconds until which commands are not tried

	mu     sync.Mutex
	closed bool                 // guarded by mu
	locks  map[*lock]struct{}   // held locks, whose renewal Close stops; guarded by mu
	waits  map[string]*waitSlot // notify mode: waiters by key; guarded by mu
	ps     *goredis.PubSub      // notify mode: the subscription, once started; guarded by mu
	subErr error                // notify mode: why the subscription cannot be made; guarded by mu
	subbed atomic.Bool          // a subscription is confirmed
	// wg counts the renewal, subscription and clean-up goroutines. It is
	// added to only under mu while closed is false, so Close's Wait sees
	// every Add.
	wg sync.WaitGroup
}

// waitSlot is closed to wake the waiters of one key.
type waitSlot struct {
	ch chan struct{}
	n  int // waiters holding the slot
}

// NewCoordinator returns a coordinator on o.Client. It does not contact
// the server.
func NewCoordinator(o CoordinatorOptions) (*Coordinator, error) {
	if o.Client == nil {
		return nil, errors.New("layercache/redis: CoordinatorOptions.Client is nil")
	}
	return newCoordinator(o, false)
}

func newCoordinator(o CoordinatorOptions, owned bool) (*Coordinator, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("layercache/redis: coordinator: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Coordinator{
		client: o.Client,
		owned:  owned,
		o:      o,
		prefix: channelName(o.Namespace, "lock:"),
		locks:  make(map[*lock]struct{}),
		waits:  make(map[string]*waitSlot),
	}
	if o.Wait == WaitNotify {
		c.channel = channelName(o.Namespace, "released")
	}
	return c, nil
}

// renewScript extends the lease of a lock still held with the caller's
// token. It returns 1 if it did, 0 if the lock is gone or someone else's.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript deletes a lock still held with the caller's token and, when
// given a channel, announces the key there. The announcement is made with
// pcall: a user without rights on the channel still releases the lock,
// and waiters find out by checking.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	if ARGV[2] ~= '' then
		redis.pcall('PUBLISH', ARGV[2], ARGV[3])
	end
	return 1
end
return 0
`)

// LockKey returns the Redis key of the load lock of key.
func (c *Coordinator) LockKey(key string) string { return c.prefix + key }

// Acquire takes the load lock of key with SET NX PX, without waiting. It
// returns nil, nil when another instance holds it. The returned lock is
// renewed every RenewEvery until it is released, lost, or the coordinator
// is closed.
func (c *Coordinator) Acquire(ctx context.Context, key string) (driver.Lock, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	l := &lock{c: c, key: c.LockKey(key), name: key, token: newToken(), stop: make(chan struct{}), done: make(chan struct{})}
	cctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	ok, err := c.client.SetNX(cctx, l.key, l.token, c.o.Lease).Result()
	cancel()
	if err != nil {
		c.failed(ctx)
		if !isServerError(err) {
			// The SET may have been applied and only its reply lost: a
			// lock nobody holds would hold the other instances up for a
			// whole lease. Take it back, off the caller's path.
			c.spawn(func() { _ = l.release(context.Background()) })
		}
		return nil, opError(cctx, "coordinator: acquire", err)
	}
	if !ok {
		return nil, nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = l.release(context.WithoutCancel(ctx))
		return nil, errCoordinatorClosed
	}
	c.locks[l] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	go l.renew()
	return l, nil
}

// spawn runs f on a goroutine that Close waits for, unless closed.
func (c *Coordinator) spawn(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

var errCoordinatorClosed = errors.New("layercache/redis: coordinator is closed")

// usable fails fast while the coordinator is closed or backing off.
func (c *Coordinator) usable() error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errCoordinatorClosed
	}
	if until := c.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return fmt.Errorf("%w: a command failed less than %v ago", ErrCoordinatorUnavailable, c.o.RetryAfter)
	}
	return nil
}

// failed starts a back-off, unless the command failed because the
// caller's context ended, which says nothing about Redis.
func (c *Coordinator) failed(ctx context.Context) {
	if ctx.Err() == nil {
		c.downUntil.Store(time.Now().Add(c.o.RetryAfter).UnixNano())
	}
}

// Wait returns once the lock of key is free (released, expired or never
// taken), or with ctx's error when ctx ends first. It never waits past the
// lease without looking at the lock again, so a holder that died delays
// the others by its remaining lease at most.
func (c *Coordinator) Wait(ctx context.Context, key string) error {
	if err := c.usable(); err != nil {
		return err
	}
	var woken <-chan struct{}
	if c.channel != "" {
		// Registered before the lock is first looked at, so a release
		// between the look and the wait is not missed.
		slot := c.register(key)
		defer c.unregister(key, slot)
		woken = slot.ch
		c.subscribe()
	}
	lk := c.LockKey(key)
	backoff := c.o.PollMin
	for {
		cctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
		left, err := c.client.PTTL(cctx, lk).Result()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.failed(ctx)
			return opError(cctx, "coordinator: wait", err)
		}
		// go-redis reports PTTL's -2 (no key) and -1 (no expiry) as
		// those many nanoseconds.
		switch {
		case left == -2:
			return nil
		case left < 0:
			// Not a lock of ours (they all expire); waiting would never
			// end and retrying would spin. Let the cache load without.
			return fmt.Errorf("layercache/redis: coordinator: wait: %s has no expiry; it is not a load lock", lk)
		}
		var d time.Duration
		if woken != nil && c.subbed.Load() {
			d = min(left, notifyRecheck)
		} else {
			d = min(left, jitter(backoff))
			backoff = min(2*backoff, c.o.PollMax)
		}
		// A lease that ends in less than a millisecond reads as 0.
		d = max(d, time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-woken:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// jitter spreads d over [d/2, d) so that waiters in many processes do not
// poll in step.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func (c *Coordinator) register(key string) *waitSlot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.waits[key]
	if s == nil {
		s = &waitSlot{ch: make(chan struct{})}
		c.waits[key] = s
	}
	s.n++
	return s
}

func (c *Coordinator) unregister(key string, s *waitSlot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.n--
	if s.n == 0 && c.waits[key] == s {
		delete(c.waits, key)
	}
}

// wake wakes the waiters of key, or of every key when all.
func (c *Coordinator) wake(key string, all bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if all {
		for k, s := range c.waits {
			close(s.ch)
			delete(c.waits, k)
		}
		return
	}
	if s := c.waits[key]; s != nil {
		close(s.ch)
		delete(c.waits, key)
	}
}

// subscribe starts the subscription to the release channel the first time
// a waiter needs it. Until it is confirmed, waiters poll. A server that
// refuses it (no rights on the channel) turns notify mode into poll mode,
// with a warning.
func (c *Coordinator) subscribe() {
	c.mu.Lock()
	if c.ps != nil || c.subErr != nil || c.closed {
		c.mu.Unlock()
		return
	}
	ps := c.client.Subscribe(context.Background())
	c.ps = ps
	c.mu.Unlock()

	// The confirmation is awaited here so that an ACL refusal is seen;
	// concurrent waiters meanwhile poll.
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	confirmed, err := subscribeNow(ctx, ps, c.channel, c.o.Timeout)
	cancel()
	if err != nil && isServerError(err) {
		c.o.Logger.Warn("layercache/redis: coordinator: cannot subscribe to release notifications; polling instead",
			"channel", c.channel, "err", err)
		c.mu.Lock()
		c.subErr = err
		c.ps = nil
		c.mu.Unlock()
		_ = ps.Close()
		return
	}
	if confirmed {
		c.subbed.Store(true)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed { // Close ran meanwhile and closed ps
		return
	}
	msgs := ps.ChannelWithSubscriptions(goredis.WithChannelSize(busChannelSize))
	c.wg.Add(1)
	go c.listen(msgs)
}

// listen wakes the waiters of each released key until the subscription is
// closed. A (re)subscription wakes everyone, since releases may have been
// missed while it was away.
func (c *Coordinator) listen(msgs <-chan any) {
	defer c.wg.Done()
	for m := range msgs {
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				c.subbed.Store(true)
				c.wake("", true)
			}
		case *goredis.Message:
			c.wake(m.Payload, false)
		}
	}
}

// Close stops the renewal of every held lock (which then expire at the end
// of their lease), ends the subscription and closes the client if the
// coordinator built it. Calling Close again does nothing.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for l := range c.locks {
		l.stopRenewal()
	}
	ps := c.ps
	c.mu.Unlock()
	var errs []error
	if ps != nil {
		errs = append(errs, ps.Close())
	}
	c.wg.Wait()
	if c.owned {
		errs = append(errs, c.client.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("layercache/redis: coordinator: close: %w", err)
	}
	return nil
}

// lock is a held load lock.
type lock struct {
	c     *Coordinator
	key   string // the lock's Redis key
	name  string // the cache key, announced on release
	token string

	stopOnce sync.Once
	stop     chan struct{} // closed to end the renewal
	done     chan struct{} // closed when the renewal has ended

	releaseOnce sync.Once
	releaseErr  error
}

func newToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

func (l *lock) stopRenewal() { l.stopOnce.Do(func() { close(l.stop) }) }

// renew extends the lease every RenewEvery until stopped or lost. A failed
// renewal is retried at the next tick: the lease still has time left.
func (l *lock) renew() {
	defer l.c.wg.Done()
	defer close(l.done)
	c := l.c
	t := time.NewTicker(c.o.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
		n, err := renewScript.Run(ctx, c.client, []string{l.key}, l.token, c.o.Lease.Milliseconds()).Int()
		cancel()
		switch {
		case err != nil:
			c.o.Logger.Debug("layercache/redis: coordinator: cannot renew lease; retrying", "key", l.name, "err", err)
		case n == 0:
			c.o.Logger.Warn("layercache/redis: coordinator: load lock lost before the load ended; another instance may load too",
				"key", l.name, "lease", c.o.Lease)
			return
		}
	}
}

// Release stops the renewal and deletes the lock if it still holds the
// caller's token, announcing the release in notify mode. A lock that was
// lost is left alone. Calling Release again returns the first result.
func (l *lock) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		l.stopRenewal()
		<-l.done
		l.c.mu.Lock()
		delete(l.c.locks, l)
		l.c.mu.Unlock()
		l.releaseErr = l.release(ctx)
	})
	return l.releaseErr
}

func (l *lock) release(ctx context.Context) error {
	c := l.c
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	if err := releaseScript.Run(ctx, c.client, []string{l.key}, l.token, c.channel, l.name).Err(); err != nil {
		return opError(ctx, "coordinator: release", err)
	}
	return nil
}

var (
	_ driver.Coordinator = (*Coordinator)(nil)
	_ driver.Lock        = (*lock)(nil)
)
