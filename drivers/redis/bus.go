package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
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

	// Logger receives malformed messages and connection trouble, which
	// have no caller to be returned to. Default: slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// BusStats are a bus's counters since it was created.
type BusStats struct {
	Published uint64 // messages sent
	Received  uint64 // messages handed to the handler
	Malformed uint64 // messages dropped because they could not be decoded
	Resets    uint64 // subscriptions, the first one and each reconnection
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

	mu        sync.Mutex
	ps        *goredis.PubSub // guarded by mu; nil until Subscribe
	closed    bool            // guarded by mu
	delivered chan struct{}   // closed when the delivery goroutine returns; nil until Subscribe

	published, received, malformed, resets atomic.Uint64

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
	if o.Timeout < 0 {
		return nil, fmt.Errorf("layercache/redis: bus: timeout %v is negative", o.Timeout)
	}
	b := &Bus{
		client:  o.Client,
		owned:   owned,
		channel: channelName(o.Namespace, "bus"),
		timeout: o.Timeout,
		logger:  o.Logger,
	}
	if b.timeout == 0 {
		b.timeout = DefaultBusTimeout
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
	}
}

// Publish sends m to every subscriber of the namespace, within
// BusOptions.Timeout.
func (b *Bus) Publish(ctx context.Context, m driver.Message) error {
	if m.Op == 0 {
		return errors.New("layercache/redis: bus: publish: message without an operation")
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if err := b.client.Publish(ctx, b.channel, encodeMessage(m)).Err(); err != nil {
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
			msg, err := decodeMessage(m.Payload)
			switch {
			case errors.Is(err, errProbe):
			case err != nil:
				b.malformed.Add(1)
				b.logger.Warn("layercache/redis: bus: dropping malformed message", "channel", b.channel, "bytes", len(m.Payload), "err", err)
			default:
				handle(msg)
				b.received.Add(1)
			}
		}
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

// The wire format of a bus message, version 1:
//
//	byte     version (1)
//	byte     operation: a driver.Op, or 0 for a probe that receivers ignore
//	string   origin
//	uvarint  number of keys, then each key as a string
//	uvarint  number of tags, then each tag as a string
//
// where a string is a uvarint length followed by that many bytes. Nothing
// may follow. A receiver drops a message of another version: the version
// byte exists so that a future format is refused, not misread.
const busVersion = 1

// probeMessage is what Subscribe publishes to check its rights.
var probeMessage = []byte{busVersion, 0, 0, 0, 0}

// errProbe is what decodeMessage returns for a probe.
var errProbe = errors.New("probe")

func encodeMessage(m driver.Message) []byte {
	n := 2 + binary.MaxVarintLen64*(3+len(m.Keys)+len(m.Tags)) + len(m.Origin)
	for _, k := range m.Keys {
		n += len(k)
	}
	for _, t := range m.Tags {
		n += len(t)
	}
	b := make([]byte, 0, n)
	b = append(b, busVersion, byte(m.Op))
	b = appendString(b, m.Origin)
	b = binary.AppendUvarint(b, uint64(len(m.Keys)))
	for _, k := range m.Keys {
		b = appendString(b, k)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Tags)))
	for _, t := range m.Tags {
		b = appendString(b, t)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeMessage parses a message from untrusted bytes. Counts and lengths
// are checked against what is left before anything is allocated, so a
// hostile message cannot make it allocate more than its own size.
func decodeMessage(p string) (driver.Message, error) {
	var m driver.Message
	if len(p) < 2 {
		return m, fmt.Errorf("%d bytes is too short", len(p))
	}
	if p[0] != busVersion {
		return m, fmt.Errorf("format version %d, want %d", p[0], busVersion)
	}
	m.Op = driver.Op(p[1])
	d := decoder{s: p[2:]}
	m.Origin = d.string()
	m.Keys = d.strings()
	m.Tags = d.strings()
	if d.err != nil {
		return driver.Message{}, d.err
	}
	if len(d.s) > 0 {
		return driver.Message{}, fmt.Errorf("%d bytes after the message", len(d.s))
	}
	if m.Op == 0 {
		return driver.Message{}, errProbe
	}
	return m, nil
}

// decoder reads the strings of a message; the first error sticks.
type decoder struct {
	s   string
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.err = errors.New("truncated or overlong varint")
	return 0
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.err = fmt.Errorf("string of %d bytes with %d left", n, len(d.s))
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	// Each string takes at least its length byte.
	if n > uint64(len(d.s)) {
		d.err = fmt.Errorf("%d strings with %d bytes left", n, len(d.s))
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return out
}

var _ driver.Bus = (*Bus)(nil)
