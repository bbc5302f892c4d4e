package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/keyring"
)

// DefaultBusTimeout is the default of BusOptions.Timeout.
const DefaultBusTimeout = 250 * time.Millisecond

const (
	// busChannelSize buffers messages between go-redis's reader and the
	// handler, so a burst does not wait on the handler message by message.
	busChannelSize = 1024

	// busSendTimeout is how long go-redis's reader waits for the handler
	// before dropping a message. A dropped invalidation would leave a stale
	// entry with nothing to say so, so it is made long enough never to
	// happen: a handler that falls behind makes the reader fall behind in
	// turn, Redis disconnects a subscriber whose backlog outgrows its
	// client-output-buffer-limit, and the reconnection resets the cache,
	// which is the correct outcome.
	busSendTimeout = time.Hour
)

// BusOptions configure a [Bus] built with [NewBus].
type BusOptions struct {
	// Client carries the messages: any go-redis client, standalone,
	// Sentinel or Cluster (classic pub/sub reaches every node of a
	// Cluster). It is required. The bus does not close it.
	Client goredis.UniversalClient `yaml:"-"`

	// Namespace names the channel, "layercache:NAMESPACE:bus": only
	// caches of the same namespace hear each other.
	// Default: "" (channel "layercache:bus").
	Namespace string `yaml:"-"`

	// Timeout bounds a Publish, and the checks Subscribe makes before it
	// returns. Default: 250ms. Negative is an error.
	Timeout time.Duration `yaml:"timeout"`

	// SigningKeys turn on signed messages: every message sent carries an
	// HMAC-SHA256 by the first key, bound to the channel, and a message
	// received is applied only if it carries a valid one by any of the
	// keys. Anything else heard on the channel (unsigned, signed with
	// another key, altered, or from another namespace's channel) is
	// dropped and counted in BusStats.Unauthenticated, so that whoever can
	// publish on the Redis server but holds no key cannot make instances
	// drop their entries. Every instance of the namespace needs the same
	// keys; a bus without keys still reads signed messages, unchecked.
	//
	// Rotation: add the new key after the old one on every instance, then
	// move it first, then drop the old key once every instance signs with
	// the new one.
	//
	// Each key has at least 32 bytes; see [Key] for the text form.
	// Default: none, messages are not signed.
	SigningKeys []Key `yaml:"signing_keys"`

	// ReplayWindow is how far a signed message's send time may lie from
	// the receiver's clock, either way. Older messages, and messages heard
	// twice within the window, are dropped and counted in
	// BusStats.Replayed, so a recorded message cannot be played back to
	// invalidate entries again. The instances' clocks must agree to well
	// within it. It needs SigningKeys.
	// Default: 30s. Negative is an error.
	ReplayWindow time.Duration `yaml:"replay_window"`

	// Logger receives malformed and refused messages (at most one line a
	// second) and connection trouble, which have no caller to be returned
	// to. Default: slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// BusStats are a bus's counters since it was created.
type BusStats struct {
	Published uint64 // messages sent
	Received  uint64 // messages handed to the handler
	Malformed uint64 // messages dropped because they could not be decoded
	Resets    uint64 // subscriptions, the first one and each reconnection

	// Unauthenticated counts messages dropped because signing keys are
	// set and the message carried no valid signature by one of them.
	Unauthenticated uint64
	// Replayed counts validly signed messages dropped because they were
	// sent outside the replay window or heard before.
	Replayed uint64
}

// Bus is an invalidation bus on Redis pub/sub: one channel per namespace,
// messages in a compact versioned binary encoding. It is safe for
// concurrent use.
//
// Pub/sub delivers nothing that was published while a subscriber was
// disconnected. go-redis reconnects and subscribes again on its own; the bus
// sees each subscription confirmed and calls the reset callback, so the
// cache drops what it may have missed news of.
type Bus struct {
	client  goredis.UniversalClient
	owned   bool // the bus built client and closes it
	channel string
	timeout time.Duration
	logger  *slog.Logger
	signer  *keyring.Signer // nil without signing keys
	guard   *replayGuard    // nil without signing keys; used by deliver alone

	mu        sync.Mutex
	ps        *goredis.PubSub // guarded by mu; nil until Subscribe
	closed    bool            // guarded by mu
	delivered chan struct{}   // closed when the delivery goroutine returns; nil until Subscribe

	published, received, malformed, resets atomic.Uint64
	unauthenticated, replayed              atomic.Uint64
	lastDropLog                            time.Time // used by deliver alone

	closeOnce sync.Once
	closeErr  error
}

// NewBus returns a bus on o.Client. It does not contact the server;
// [Bus.Subscribe] does.
func NewBus(o BusOptions) (*Bus, error) {
	if o.Client == nil {
		return nil, errors.New("layercache/redis: BusOptions.Client is nil")
	}
	return newBus(o, false)
}

func newBus(o BusOptions, owned bool) (*Bus, error) {
	var errs []error
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", o.Timeout))
	}
	switch {
	case o.ReplayWindow < 0:
		errs = append(errs, fmt.Errorf("replay_window %v is negative", o.ReplayWindow))
	case o.ReplayWindow > 0 && len(o.SigningKeys) == 0:
		errs = append(errs, errors.New("replay_window needs signing_keys: only signed messages carry their send time"))
	case o.ReplayWindow > 0 && o.ReplayWindow < time.Millisecond:
		errs = append(errs, fmt.Errorf("replay_window %v is shorter than the 1ms resolution of send times", o.ReplayWindow))
	}
	var signer *keyring.Signer
	if len(o.SigningKeys) > 0 {
		var err error
		if signer, err = keyring.NewSigner("signing_keys", busLabel, rawKeys(o.SigningKeys)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("layercache/redis: bus: %w", err)
	}
	b := &Bus{
		client:  o.Client,
		owned:   owned,
		channel: channelName(o.Namespace, "bus"),
		timeout: o.Timeout,
		logger:  o.Logger,
		signer:  signer,
	}
	if b.timeout == 0 {
		b.timeout = DefaultBusTimeout
	}
	if signer != nil {
		w := o.ReplayWindow
		if w == 0 {
			w = DefaultReplayWindow
		}
		b.guard = newReplayGuard(w)
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	return b, nil
}

// Channel returns the name of the pub/sub channel the bus uses.
func (b *Bus) Channel() string { return b.channel }

// Stats returns the bus's counters.
func (b *Bus) Stats() BusStats {
	return BusStats{
		Published: b.published.Load(),
		Received:  b.received.Load(),
		Malformed: b.malformed.Load(),
		Resets:    b.resets.Load(),

		Unauthenticated: b.unauthenticated.Load(),
		Replayed:        b.replayed.Load(),
	}
}

// Dropped is the number of messages dropped on receipt: malformed,
// unauthenticated and replayed ones ([driver.DropCounter]).
func (b *Bus) Dropped() uint64 {
	return b.malformed.Load() + b.unauthenticated.Load() + b.replayed.Load()
}

// Publish sends m to every subscriber of the namespace, within
// BusOptions.Timeout, signed when the bus has signing keys.
func (b *Bus) Publish(ctx context.Context, m driver.Message) error {
	if m.Op == 0 {
		return errors.New("layercache/redis: bus: publish: message without an operation")
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if err := b.client.Publish(ctx, b.channel, b.encode(m)).Err(); err != nil {
		return opError(ctx, "bus: publish", err)
	}
	b.published.Add(1)
	return nil
}

// Subscribe starts delivering the namespace's messages to handle, and
// calls reset on every subscription: the first one, before Subscribe
// returns, and each one after go-redis reconnected. The callbacks are
// called one at a time, from a goroutine that Close stops. Subscribe may
// be called once.
//
// Before it returns, Subscribe checks that the client may subscribe and
// publish to the channel: an error reply (such as NOPERM from an ACL user
// without rights on the channel) is returned. A server that cannot be
// reached is not an error: the cache starts without it, the subscription
// is made when the server is back, and reset is called then.
func (b *Bus) Subscribe(ctx context.Context, handle func(driver.Message), reset func()) error {
	if handle == nil || reset == nil {
		return errors.New("layercache/redis: bus: Subscribe with a nil callback")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return errors.New("layercache/redis: bus: Subscribe after Close")
	case b.ps != nil:
		return errors.New("layercache/redis: bus: Subscribe called twice")
	}

	// Subscribe without channels does no I/O; the channel is subscribed
	// next, so that its error is seen here. go-redis remembers the channel
	// even when that fails, and subscribes again on every reconnection.
	ps := b.client.Subscribe(ctx)
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	confirmed, err := subscribeNow(cctx, ps, b.channel, b.timeout)
	if err == nil {
		// Subscribing proves nothing about publishing: ACLs grant each
		// separately, so probe that too. The probe is a message every bus
		// ignores.
		err = b.client.Publish(cctx, b.channel, probeMessage).Err()
	}
	if err != nil {
		if isServerError(err) {
			_ = ps.Close()
			if isPermissionError(err) || isAuthError(err) {
				u := username(b.client)
				return fmt.Errorf("%w: bus: Redis user %q may not use channel %s (grant it with ACL SETUSER %s &%s, +subscribe and +publish): %w",
					ErrPermission, u, b.channel, u, globEscape(b.channel), err)
			}
			return fmt.Errorf("layercache/redis: bus: cannot use channel %q: %w", b.channel, err)
		}
		if ctx.Err() != nil {
			_ = ps.Close()
			return fmt.Errorf("layercache/redis: bus: subscribe: %w", ctx.Err())
		}
		b.logger.Warn("layercache/redis: bus: Redis unreachable; subscribing when it is back", "channel", b.channel, "err", err)
	}

	b.ps = ps
	b.delivered = make(chan struct{})
	msgs := ps.ChannelWithSubscriptions(
		goredis.WithChannelSize(busChannelSize),
		goredis.WithChannelSendTimeout(busSendTimeout),
	)
	if confirmed {
		// The first reset is made before Subscribe returns, so that it
		// cannot land in the middle of the cache's first loads (a reset
		// marks loads in flight as invalidated: their values would not be
		// stored).
		b.resets.Add(1)
		reset()
	}
	go b.deliver(msgs, handle, reset)
	return nil
}

// subscribeNow subscribes ps to channel and waits for the confirmation.
func subscribeNow(ctx context.Context, ps *goredis.PubSub, channel string, timeout time.Duration) (bool, error) {
	if err := ps.Subscribe(ctx, channel); err != nil {
		return false, err
	}
	reply, err := ps.ReceiveTimeout(ctx, timeout)
	if err != nil {
		return false, err
	}
	if s, ok := reply.(*goredis.Subscription); !ok || s.Kind != "subscribe" {
		return false, fmt.Errorf("unexpected reply %v to SUBSCRIBE", reply)
	}
	return true, nil
}

// deliver runs until go-redis closes msgs, which it does when the PubSub is
// closed.
func (b *Bus) deliver(msgs <-chan any, handle func(driver.Message), reset func()) {
	defer close(b.delivered)
	for m := range msgs {
		switch m := m.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				b.resets.Add(1)
				reset()
			}
		case *goredis.Message:
			if msg, ok := b.receive(m.Payload); ok {
				handle(msg)
				b.received.Add(1)
			}
		}
	}
}

// encode returns the wire form of m: signed when the bus has keys.
func (b *Bus) encode(m driver.Message) []byte {
	if b.signer == nil {
		return encodeMessage(m)
	}
	var nonce [nonceSize]byte
	for i := range nonceSize / 8 {
		binary.LittleEndian.PutUint64(nonce[8*i:], rand.Uint64())
	}
	return encodeSigned(m, time.Now().UnixMilli(), nonce, b.signer, b.channel)
}

// receive decodes a payload heard on the channel and decides whether it is
// applied. With signing keys, only a validly signed message that is not a
// replay is; probes are ignored, whoever sent them, since they do nothing.
func (b *Bus) receive(p string) (driver.Message, bool) {
	if p == string(probeMessage) {
		return driver.Message{}, false
	}
	if b.signer == nil {
		m, err := b.decodeUnchecked(p)
		if err != nil {
			if !errors.Is(err, errProbe) {
				b.drop(&b.malformed, "malformed", len(p), err)
			}
			return driver.Message{}, false
		}
		return m, true
	}
	body, err := b.signer.Verify(stringBytes(p), b.channel)
	if err != nil {
		b.drop(&b.unauthenticated, "unauthenticated", len(p), err)
		return driver.Message{}, false
	}
	sm, err := decodeSigned(p[:len(body)]) // body is that prefix of p
	if err != nil {
		// Signed by a holder of a key, yet not a message of this version.
		b.drop(&b.malformed, "malformed", len(p), err)
		return driver.Message{}, false
	}
	if !b.guard.admit(time.Now().UnixMilli(), sm.sentAt, sm.nonce) {
		b.drop(&b.replayed, "replayed or outside the replay window", len(p),
			fmt.Errorf("sent at %s", time.UnixMilli(sm.sentAt).UTC().Format(time.RFC3339Nano)))
		return driver.Message{}, false
	}
	return sm.Message, true
}

// decodeUnchecked decodes a message of either version without checking a
// signature, for a bus that has no keys and so trusts the channel.
func (b *Bus) decodeUnchecked(p string) (driver.Message, error) {
	if len(p) > 0 && p[0] == busVersionSigned {
		if len(p) < keyring.TrailerSize {
			return driver.Message{}, fmt.Errorf("%d bytes is too short for a signed message", len(p))
		}
		sm, err := decodeSigned(p[:len(p)-keyring.TrailerSize])
		return sm.Message, err
	}
	return decodeMessage(p)
}

// drop counts a message that is not applied and logs it, at most once a
// second so that a flood of bad messages does not flood the log too.
func (b *Bus) drop(counter *atomic.Uint64, why string, size int, err error) {
	n := counter.Add(1)
	if now := time.Now(); now.Sub(b.lastDropLog) >= time.Second {
		b.lastDropLog = now
		b.logger.Warn("layercache/redis: bus: dropping "+why+" message", "channel", b.channel, "bytes", size, "err", err, "dropped_so_far", n)
	}
}

// Close stops the delivery goroutine, waiting for a handler call in
// progress, and closes the client if the bus built it. Calling Close again
// returns the first result.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		ps, delivered := b.ps, b.delivered
		b.mu.Unlock()
		var errs []error
		if ps != nil {
			// Closing the PubSub makes go-redis close msgs, which ends
			// deliver.
			if err := ps.Close(); err != nil {
				errs = append(errs, err)
			}
			<-delivered
		}
		if b.owned {
			errs = append(errs, b.client.Close())
		}
		if err := errors.Join(errs...); err != nil {
			b.closeErr = fmt.Errorf("layercache/redis: bus: close: %w", err)
		}
	})
	return b.closeErr
}

var (
	_ driver.Bus         = (*Bus)(nil)
	_ driver.DropCounter = (*Bus)(nil)
)
