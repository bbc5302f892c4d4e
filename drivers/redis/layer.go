package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/keyring"
	"github.com/layercache/layercache/internal/prefix"
)

// ErrValueTooLarge is wrapped by the error a write returns when an encoded
// record is larger than Options.MaxValueSize. The record is not written. It
// wraps [driver.ErrRefused]: the layer is healthy.
var ErrValueTooLarge = fmt.Errorf("layercache/redis: value too large (%w)", driver.ErrRefused)

// The defaults of [Options].
const (
	DefaultTTL          = time.Hour
	DefaultTimeout      = 100 * time.Millisecond
	DefaultMaxValueSize = 16 << 20

	// maxRedisValue is the largest string Redis accepts (proto-max-bulk-len).
	maxRedisValue = 512 << 20
)

// Options configure a [Layer] built with [New]. Every field but Client maps
// to the key of the same name in a "redis" layer's configuration block.
type Options struct {
	// Client is the go-redis client the layer talks through: a *Client
	// (standalone or Sentinel, from NewFailoverClient) or a *ClusterClient.
	// It is required. The layer does not close it; its owner does, after
	// closing the layer.
	//
	// The client should be made with ContextTimeoutEnabled: true. Without it
	// go-redis ignores context deadlines on socket reads, so a stopped
	// server blocks every operation until the client's ReadTimeout (5 s by
	// default) instead of the cache's per-operation timeout.
	Client goredis.UniversalClient `yaml:"-"`

	// TTL caps how long an entry lives in Redis, whatever the entry's own
	// expiry says. Entries with no expiry live this long.
	// Default: 1h. Negative is an error.
	TTL time.Duration `yaml:"ttl"`

	// Prefix is prepended to every key. A namespace prefix such as "myapp:"
	// is usual: it keeps the cache's keys apart from other data in the same
	// database and is what [Layer.Clear] deletes by. A prefix with a
	// Cluster hash tag ("{myapp}:") puts every key in one slot.
	// Default: "" (keys are stored as given; Clear refuses to run).
	Prefix string `yaml:"prefix"`

	// Timeout is the time one operation may take (InvalidateTags,
	// InvalidatePrefix, ExpireTags, ExpirePrefix and Clear, which may run
	// long on purpose, excepted). The layer
	// enforces it itself (see [Layer.Timeout]): through the
	// client's socket timeouts when they are within it and go-redis will
	// not retry, else with a context deadline per operation.
	// Default: 100ms. Negative is an error.
	Timeout time.Duration `yaml:"timeout"`

	// CompressAbove compresses payloads longer than this many bytes with S2
	// before they are stored. S2 costs little CPU and pays off for text
	// payloads (JSON, msgpack with long strings) of a few KiB and up;
	// 1024 is a reasonable setting for those. Incompressible payloads are
	// stored as they are after a quick attempt.
	// Default: 0, compression off. Negative is an error.
	CompressAbove int `yaml:"compress_above"`

	// MaxValueSize refuses writes whose encoded record (after compression)
	// is larger than this many bytes: the write returns an error wrapping
	// [ErrValueTooLarge] and removes any older value under the key. Large
	// values block Redis's single thread while they are copied.
	// Default: 16 MiB. Negative, or more than Redis's own 512 MiB limit,
	// is an error.
	MaxValueSize int `yaml:"max_value_size"`

	// SigningKeys turn on signed records: every record written carries an
	// HMAC-SHA256 by the first key, bound to its Redis key, and a record
	// read must carry a valid one by any of the keys. A record that does
	// not (written by another program or by an instance without the keys,
	// altered, or copied from another key) is a miss for the cache and an
	// error wrapping [ErrUnauthenticated] and envelope.ErrCorrupt, which
	// the cache counts; [Layer.Stats] counts them too. So anyone who can
	// write to Redis but does not hold a key cannot make the cache serve a
	// value of their choosing. A signature costs 39 bytes per record and
	// an HMAC-SHA256 pass over each record read or written, about a
	// microsecond per KiB: a few per cent of a 1 KiB hit, most of a
	// millisecond on a 1 MiB one.
	//
	// Rotation: add the new key after the old one everywhere, then move it
	// first (new records are signed with it, old ones still verify), then
	// drop the old key once records it signed have expired (Options.TTL).
	// A layer without keys reads signed records without checking them.
	//
	// Each key has at least 32 bytes; see [Key] for the text form.
	// Default: none, records are not signed.
	SigningKeys []Key `yaml:"signing_keys"`
}

// Layer is a cache layer stored in Redis. It is safe for concurrent use.
// Its methods do not apply a timeout of their own: they honour the deadline
// of the context they are given (see [Options.Client]).
type Layer struct {
	client goredis.UniversalClient
	// cluster is the same client when it is a Cluster client: multi-key
	// commands are then split by hash slot.
	cluster *goredis.ClusterClient
	owned   bool // the layer built client and closes it

	ttl     time.Duration
	prefix  string
	timeout time.Duration
	// socketTimed is true when the client's own socket, dial and pool
	// timeouts are all within timeout: operations then need no context
	// deadline (and no runtime timer) to be bounded by it.
	socketTimed  bool
	env          envelope.Options
	maxValueSize int
	signer       *keyring.Signer // nil without signing keys

	unauthenticated atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// New returns a layer on o.Client. It does not contact the server: a Redis
// that is down when the program starts is a matter for the cache's
// degradation handling, not a reason to fail start-up.
func New(o Options) (*Layer, error) {
	if o.Client == nil {
		return nil, errors.New("layercache/redis: Options.Client is nil")
	}
	return newLayer(o, false)
}

func newLayer(o Options, owned bool) (*Layer, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	l := &Layer{
		client:       o.Client,
		owned:        owned,
		ttl:          o.TTL,
		prefix:       o.Prefix,
		timeout:      o.Timeout,
		env:          envelope.Options{CompressAbove: o.CompressAbove},
		maxValueSize: o.MaxValueSize,
	}
	if l.ttl == 0 {
		l.ttl = DefaultTTL
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.maxValueSize == 0 {
		l.maxValueSize = DefaultMaxValueSize
	}
	if len(o.SigningKeys) > 0 {
		s, err := keyring.NewSigner("signing_keys", valueLabel, rawKeys(o.SigningKeys))
		if err != nil {
			return nil, fmt.Errorf("layercache/redis: %w", err)
		}
		l.signer = s
	}
	l.cluster, _ = o.Client.(*goredis.ClusterClient)
	l.socketTimed = socketTimedWithin(o.Client, l.timeout)
	return l, nil
}

// socketTimedWithin reports whether every wait in client (dial, read,
// write, pool) is bounded by at most d, and nothing is tried twice: go-redis
// retries commands and dials by default, and each retry gets the full
// socket timeouts again. Cluster clients also follow redirections, so they
// always get a context deadline.
func socketTimedWithin(client goredis.UniversalClient, d time.Duration) bool {
	within := func(ts ...time.Duration) bool {
		for _, t := range ts {
			if t <= 0 || t > d {
				return false
			}
		}
		return true
	}
	switch c := client.(type) {
	case *goredis.Client:
		o := c.Options()
		return o.MaxRetries == 0 && o.DialerRetries == 1 &&
			within(o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout)
	}
	return false
}

// bounded returns ctx bounded by the layer's timeout. When the client's
// socket timeouts already bound every wait, or ctx ends sooner anyway, it
// adds nothing: a context deadline costs a runtime timer, a few percent of
// a loopback round trip.
func (l *Layer) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.socketTimed {
		return ctx, noCancel
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= l.timeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, l.timeout)
}

func noCancel() {}

// validate reports impossible values by their configuration key, so the
// same message serves a program and a configuration file.
func (o *Options) validate() error {
	var errs []error
	if o.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl %v is negative", o.TTL))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", o.Timeout))
	}
	if o.CompressAbove < 0 {
		errs = append(errs, fmt.Errorf("compress_above %d is negative", o.CompressAbove))
	}
	if o.MaxValueSize < 0 || o.MaxValueSize > maxRedisValue {
		errs = append(errs, fmt.Errorf("max_value_size %d is outside 0..%d", o.MaxValueSize, maxRedisValue))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("layercache/redis: %w", err)
	}
	return nil
}

// Name returns "redis".
func (l *Layer) Name() string { return "redis" }

// Timeout returns Options.Timeout, the time every operation but
// InvalidateTags and Clear may take. The layer enforces it itself, through
// the client's socket timeouts when they are within it (as for clients it
// builds from configuration) and otherwise with a context deadline, so the
// cache adds none of its own.
func (l *Layer) Timeout() time.Duration { return l.timeout }

// Get returns the entry stored under key, or nil, nil when there is none or
// it has expired. A value that is not a valid record is an error wrapping
// envelope.ErrCorrupt. The returned entry's Payload shares memory with the
// reply; it must not be modified.
func (l *Layer) Get(ctx context.Context, key string) (*driver.Entry, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	// Bytes does not copy the reply: the payload is read from the network
	// once, into the buffer the entry ends up pointing at.
	b, err := l.client.Get(ctx, l.prefix+key).Bytes()
	if err != nil {
		if errors.Is(err, goredis.Nil) {
			return nil, nil
		}
		return nil, opError(ctx, "get", err)
	}
	return l.decode(key, b, time.Now().UnixNano())
}

// Set stores e under key with SET ... PX, for e's remaining lifetime capped
// by Options.TTL. An entry that has already expired is not written; any
// older value under key is removed instead, so that it does not outlive the
// write that replaced it. The same holds for a record refused as too large,
// whose error wraps [ErrValueTooLarge]. A tagged entry is also added to
// its tags' indexes, in the same round trip (see [Layer.InvalidateTags]).
func (l *Layer) Set(ctx context.Context, key string, e *driver.Entry) error {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	k := l.prefix + key
	rec, ttl, encErr := l.encode(key, e, time.Now().UnixNano())
	if rec == nil {
		if err := l.client.Unlink(ctx, k).Err(); err != nil {
			return errors.Join(encErr, opError(ctx, "set", err))
		}
		return encErr
	}
	if len(e.Tags) > 0 {
		return l.setTagged(ctx, key, rec, ttl, e.Tags)
	}
	if err := l.client.Set(ctx, k, rec, ttl).Err(); err != nil {
		return opError(ctx, "set", err)
	}
	return nil
}

// Delete removes the keys with UNLINK, which frees large values off Redis's
// main thread. Absent keys are not an error.
func (l *Layer) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	if err := unlink(ctx, l.client, l.fullKeys(keys), l.cluster != nil); err != nil {
		return opError(ctx, "delete", err)
	}
	return nil
}

// Ping checks that the server answers.
func (l *Layer) Ping(ctx context.Context) error {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	if err := l.client.Ping(ctx).Err(); err != nil {
		return opError(ctx, "ping", err)
	}
	return nil
}

// As sets target to the layer's client and reports whether it could.
// target may be a *goredis.UniversalClient, or a **goredis.Client or
// **goredis.ClusterClient when the client is of that type. The client stays
// owned by the layer when the layer built it: do not close it.
func (l *Layer) As(target any) bool {
	switch t := target.(type) {
	case *goredis.UniversalClient:
		*t = l.client
		return true
	case **goredis.Client:
		c, ok := l.client.(*goredis.Client)
		if ok {
			*t = c
		}
		return ok
	case **goredis.ClusterClient:
		if l.cluster != nil {
			*t = l.cluster
		}
		return l.cluster != nil
	}
	return false
}

// Close closes the client if the layer built it (from configuration), and
// otherwise leaves it to its owner. Calling Close again returns the first
// result.
func (l *Layer) Close() error {
	if !l.owned {
		return nil
	}
	l.closeOnce.Do(func() {
		if err := l.client.Close(); err != nil {
			l.closeErr = fmt.Errorf("layercache/redis: close: %w", err)
		}
	})
	return l.closeErr
}

// encode returns the record to store for e and how long Redis should keep
// it. A nil record means e must not be stored: it has expired (err is nil)
// or it cannot be (err says why).
func (l *Layer) encode(key string, e *driver.Entry, now int64) (rec []byte, ttl time.Duration, err error) {
	ttl = l.ttl
	if e.ExpiresAt != 0 {
		left := time.Duration(e.ExpiresAt - now)
		// Redis counts in milliseconds; less than one left is as good as
		// expired, and rounding it up would keep the entry past ExpiresAt.
		if left < time.Millisecond {
			return nil, 0, nil
		}
		ttl = min(ttl, left)
	}
	// Refuse before encoding when the payload alone is too large and will
	// not be compressed, so a huge value costs no copy.
	compress := l.env.CompressAbove > 0 && len(e.Payload) > l.env.CompressAbove
	if !compress && len(e.Payload) > l.maxValueSize {
		return nil, 0, l.tooLarge(key, len(e.Payload), "payload")
	}
	rec, err = l.record(key, e)
	if err != nil {
		return nil, 0, err
	}
	if len(rec) > l.maxValueSize {
		return nil, 0, l.tooLarge(key, len(rec), "record")
	}
	return rec, ttl, nil
}

func (l *Layer) tooLarge(key string, n int, what string) error {
	return fmt.Errorf("%w: key %q: %s of %d bytes, max_value_size is %d", ErrValueTooLarge, key, what, n, l.maxValueSize)
}

// record returns the bytes Set stores for e under key: its envelope,
// signed when the layer has signing keys.
func (l *Layer) record(key string, e *driver.Entry) ([]byte, error) {
	rec, err := envelope.Marshal(e, l.env)
	if err != nil {
		return nil, fmt.Errorf("layercache/redis: key %q: %w", key, err)
	}
	return l.sign(rec, l.prefix+key), nil
}

// decode turns a stored record into an entry, hiding entries that expired
// between Redis's clock and ours.
func (l *Layer) decode(key string, b []byte, now int64) (*driver.Entry, error) {
	e := new(driver.Entry)
	if live, err := l.decodeTo(e, key, b, now); !live {
		return nil, err
	}
	return e, nil
}

// decodeTo is decode into an entry the caller provides; it reports whether
// e holds a live entry.
func (l *Layer) decodeTo(e *driver.Entry, key string, b []byte, now int64) (live bool, err error) {
	b, err = l.unsign(key, b)
	if err != nil {
		return false, err
	}
	if err := envelope.UnmarshalTo(e, b); err != nil {
		return false, fmt.Errorf("layercache/redis: key %q: %w", key, err)
	}
	return !e.Expired(now), nil
}

// fullKeys returns keys with the prefix prepended.
func (l *Layer) fullKeys(keys []string) []string { return prefix.All(l.prefix, keys) }

// opError wraps a failed command. When the context has ended, its error is
// wrapped too: go-redis reports a deadline that cut a socket read as a
// network timeout, and the cache must be able to tell it apart from a
// failing server with errors.Is(err, context.DeadlineExceeded).
//
// The socket's deadline is the context's, set by go-redis, and it may
// fire a moment before the context's own timer: a timeout at or after the
// context's deadline is that deadline even while ctx.Err is still nil.
func opError(ctx context.Context, op string, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("layercache/redis: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("layercache/redis: %s: %w", op, err)
}

var (
	_ driver.Layer     = (*Layer)(nil)
	_ driver.Namer     = (*Layer)(nil)
	_ driver.Timeouter = (*Layer)(nil)
	_ driver.Pinger    = (*Layer)(nil)
	_ driver.Aser      = (*Layer)(nil)
)
