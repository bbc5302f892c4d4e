package memcached

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// ErrValueTooLarge is wrapped by the error a write returns when an encoded
// record is larger than Options.MaxValueSize. The record is not written. It
// wraps [driver.ErrRefused]: the layer is healthy.
var ErrValueTooLarge = fmt.Errorf("layercache/memcached: value too large (%w)", driver.ErrRefused)

// The defaults of [Options].
const (
	DefaultTTL     = time.Hour
	DefaultTimeout = 100 * time.Millisecond
	// DefaultMaxValueSize is what memcached's default largest item
	// (-I 1m) holds together with a 250-byte key and the item's header.
	DefaultMaxValueSize = 1<<20 - 512
	// DefaultMaxIdleConns is gomemcache's two idle connections raised to
	// what a busy service keeps in use, so that bursts do not dial and
	// close a connection per operation.
	DefaultMaxIdleConns = 32

	// maxItemSize is the largest item memcached can be configured to hold
	// (-I 1024m).
	maxItemSize = 1 << 30
)

// Options configure a [Layer] built with [New]. Every field maps to the
// key of the same name in a "memcached" layer's configuration block.
type Options struct {
	// Addrs are the memcached servers, as "host:port" (the host is
	// resolved when connecting) or as a Unix socket path (any address
	// containing '/'). Keys are spread over them by rendezvous hashing.
	// At least one is required; duplicates are an error.
	Addrs []string `yaml:"addrs"`

	// Prefix is prepended to every key, to keep the cache's keys apart from
	// other programs' items on the same servers. It must be a legal
	// memcached key of at most 202 bytes (no spaces or control
	// characters), leaving room for a hashed key after it.
	// Default: "" (from a configuration file: the namespace and a colon,
	// "myapp:").
	Prefix string `yaml:"prefix"`

	// TTL caps how long an entry lives in memcached, whatever the entry's
	// own expiry says. Entries with no expiry live this long.
	// Default: 1h. Negative is an error.
	TTL time.Duration `yaml:"ttl"`

	// Timeout bounds every operation: it is the dial timeout and the
	// socket read and write deadline of the layer's connections (see
	// [Layer.Timeout]). Default: 100ms. Negative is an error.
	Timeout time.Duration `yaml:"timeout"`

	// MaxValueSize refuses writes whose encoded record (after compression)
	// is larger than this many bytes: the write returns an error wrapping
	// [ErrValueTooLarge] and removes any older value under the key. It must
	// fit the servers' largest item (memcached's -I, 1 MiB by default) with
	// the key and the item's header, about 400 bytes more.
	// Default: 1 MiB less 512 bytes. Negative, or more than 1 GiB
	// (memcached's own limit), is an error.
	MaxValueSize int `yaml:"max_value_size"`

	// CompressAbove compresses payloads longer than this many bytes with
	// S2 before they are stored, as in the Redis layer; 1024 suits text
	// payloads. Default: 0, compression off. Negative is an error.
	CompressAbove int `yaml:"compress_above"`

	// MaxIdleConns is how many idle connections the layer keeps per server.
	// gomemcache dials a new connection whenever none is idle and closes
	// any beyond this number when an operation ends, so set it above the
	// number of operations that run at once at peak. Default: 32. Negative
	// is an error.
	MaxIdleConns int `yaml:"max_idle_conns"`
}

// Layer is a cache layer stored in memcached. It is safe for concurrent use.
// It owns its gomemcache client and closes its connections on Close.
type Layer struct {
	client *memcache.Client
	// servers is the client's server selector, kept to name servers in
	// errors.
	servers *serverList

	prefix       string
	ttl          time.Duration
	timeout      time.Duration
	env          envelope.Options
	maxValueSize int

	closeOnce sync.Once
	closeErr  error
}

// New returns a layer on the servers o.Addrs. It does not contact them (nor
// resolve their names): a memcached that is down when the program starts
// is a matter for the cache's degradation handling, not a reason to fail
// start-up.
func New(o Options) (*Layer, error) {
	if err := o.validate(""); err != nil {
		return nil, err
	}
	servers, err := newServerList(o.Addrs)
	if err != nil {
		return nil, fmt.Errorf("layercache/memcached: %w", err)
	}
	l := &Layer{
		servers:      servers,
		prefix:       o.Prefix,
		ttl:          o.TTL,
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
	l.client = memcache.NewFromSelector(servers)
	l.client.Timeout = l.timeout
	l.client.MaxIdleConns = o.MaxIdleConns
	if l.client.MaxIdleConns == 0 {
		l.client.MaxIdleConns = DefaultMaxIdleConns
	}
	return l, nil
}

// validate reports impossible values by their configuration key, under
// path (the block's place in a configuration file, or "" for code), so the
// same message serves a program and a file.
func (o *Options) validate(path string) error {
	key := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	var errs []error
	if len(o.Addrs) == 0 {
		errs = append(errs, fmt.Errorf("%s: at least one server address is required", key("addrs")))
	}
	seen := make(map[string]int, len(o.Addrs))
	for i, a := range o.Addrs {
		k := key(fmt.Sprintf("addrs[%d]", i))
		if err := checkAddr(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		if j, dup := seen[a]; dup {
			errs = append(errs, fmt.Errorf("%s: %q is also addrs[%d]; list each server once", k, a, j))
		}
		seen[a] = i
	}
	if err := checkPrefix(o.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", key("prefix"), err))
	}
	if o.TTL < 0 {
		errs = append(errs, fmt.Errorf("%s: %v is negative", key("ttl"), o.TTL))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s: %v is negative", key("timeout"), o.Timeout))
	}
	if o.MaxValueSize < 0 || o.MaxValueSize > maxItemSize {
		errs = append(errs, fmt.Errorf("%s: %d is outside 0..%d (memcached's largest item is 1 GiB)", key("max_value_size"), o.MaxValueSize, maxItemSize))
	}
	if o.CompressAbove < 0 {
		errs = append(errs, fmt.Errorf("%s: %d is negative", key("compress_above"), o.CompressAbove))
	}
	if o.MaxIdleConns < 0 {
		errs = append(errs, fmt.Errorf("%s: %d is negative", key("max_idle_conns"), o.MaxIdleConns))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("layercache/memcached: %w", err)
	}
	return nil
}

// Name returns "memcached".
func (l *Layer) Name() string { return "memcached" }

// Timeout returns Options.Timeout. The layer enforces it itself, as the
// dial timeout and socket deadline of its connections, so the cache adds
// no deadline of its own.
func (l *Layer) Timeout() time.Duration { return l.timeout }

// Get returns the entry stored under key, or nil, nil when there is none,
// it has expired, or one of its tags was invalidated since it was written
// (checked in one more round trip, for tagged entries only). A value that
// is not a valid record is an error wrapping envelope.ErrCorrupt.
func (l *Layer) Get(ctx context.Context, key string) (*driver.Entry, error) {
	sk := l.storageKey(key)
	e, err := call(ctx, l, func() (*driver.Entry, error) {
		it, err := l.client.Get(sk)
		if err != nil {
			return nil, err
		}
		e, epochs, err := decodeItem(key, it.Value, time.Now().UnixNano())
		if err != nil || e == nil || epochs == nil {
			return e, err
		}
		items, _, err := l.fetchEpochs(e.Tags)
		if err != nil || !l.current(e.Tags, epochs, items) {
			return nil, err
		}
		return e, nil
	})
	switch {
	case err == nil:
		return e, nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return nil, nil
	case errors.Is(err, envelope.ErrCorrupt):
		return nil, err // the server answered: not an operation's failure
	}
	return nil, opError(ctx, "get", err)
}

// Set stores e under key for e's remaining lifetime capped by Options.TTL
// (see the package documentation for how memcached counts it). An entry
// that has already expired is not written; any older value under key is
// removed instead, so that it does not outlive the write that replaced it.
// The same holds for a record refused as too large, whose error wraps
// [ErrValueTooLarge]. A tagged entry is stored with its tags' epochs, read
// (and created where missing) in one more round trip (see
// [Layer.InvalidateTags]).
func (l *Layer) Set(ctx context.Context, key string, e *driver.Entry) error {
	sk := l.storageKey(key)
	now := time.Now()
	rec, exp, encErr := l.encode(key, e, now)
	if rec == nil {
		_, err := call(ctx, l, func() (struct{}, error) { return struct{}{}, l.client.Delete(sk) })
		if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			return errors.Join(encErr, opError(ctx, "set", err))
		}
		return encErr
	}
	_, err := call(ctx, l, func() (struct{}, error) {
		value := rec
		if len(e.Tags) > 0 {
			epochs, err := l.writeEpochs(e.Tags)
			if err != nil {
				return struct{}{}, err
			}
			value = wrapTagged(epochs, rec)
		}
		return struct{}{}, l.client.Set(&memcache.Item{Key: sk, Value: value, Expiration: exp})
	})
	if err != nil {
		return opError(ctx, "set", err)
	}
	return nil
}

// Delete removes the keys, one command each (memcached has no multi-key
// delete). Absent keys are not an error. It stops at the first key that
// fails.
func (l *Layer) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := call(ctx, l, func() (struct{}, error) {
		for _, k := range keys {
			if err := l.client.Delete(l.storageKey(k)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				return struct{}{}, fmt.Errorf("key %q: %w", k, err)
			}
		}
		return struct{}{}, nil
	})
	if err != nil {
		return opError(ctx, "delete", err)
	}
	return nil
}

// Ping checks that every server answers, and names the first that does
// not.
func (l *Layer) Ping(ctx context.Context) error {
	if _, err := call(ctx, l, func() (struct{}, error) { return struct{}{}, l.client.Ping() }); err != nil {
		return opError(ctx, "ping", err)
	}
	return nil
}

// As sets target, a **memcache.Client, to the layer's client and reports
// whether it could. The client stays owned by the layer: do not close it,
// and do not change its fields, which the layer's timeouts rely on.
func (l *Layer) As(target any) bool {
	if t, ok := target.(**memcache.Client); ok && t != nil {
		*t = l.client
		return true
	}
	return false
}

// Shared marks the layer as used in common by every instance.
func (l *Layer) Shared() {}

// Close closes the layer's idle connections. Calling Close again returns
// the first result.
func (l *Layer) Close() error {
	l.closeOnce.Do(func() {
		if err := l.client.Close(); err != nil {
			l.closeErr = fmt.Errorf("layercache/memcached: close: %w", err)
		}
	})
	return l.closeErr
}

// encode returns the record to store for e and the expiration to give
// memcached. A nil record means e must not be stored: it has expired (err
// is nil) or it cannot be (err says why).
func (l *Layer) encode(key string, e *driver.Entry, now time.Time) (rec []byte, exp int32, err error) {
	life, own := l.ttl, false
	if e.ExpiresAt != 0 {
		left := time.Duration(e.ExpiresAt - now.UnixNano())
		if left <= 0 {
			return nil, 0, nil
		}
		if left < life {
			life, own = left, true
		}
	}
	// Refuse before encoding when the payload alone is too large and will
	// not be compressed, so a huge value costs no copy.
	compress := l.env.CompressAbove > 0 && len(e.Payload) > l.env.CompressAbove
	if !compress && len(e.Payload) > l.maxValueSize {
		return nil, 0, l.tooLarge(key, len(e.Payload), "payload")
	}
	rec, err = envelope.Marshal(e, l.env)
	if err != nil {
		return nil, 0, fmt.Errorf("layercache/memcached: key %q: %w", key, err)
	}
	if n := len(rec) + taggedHeaderLen(len(e.Tags)); n > l.maxValueSize {
		return nil, 0, l.tooLarge(key, n, "record")
	}
	return rec, expiration(life, own, now), nil
}

func (l *Layer) tooLarge(key string, n int, what string) error {
	return fmt.Errorf("%w: key %q: %s of %d bytes, max_value_size is %d", ErrValueTooLarge, key, what, n, l.maxValueSize)
}

// decode turns a stored record into an entry, hiding entries that expired
// by our clock but not yet by memcached's whole seconds.
func decode(key string, b []byte, now int64) (*driver.Entry, error) {
	e, err := envelope.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("layercache/memcached: key %q: %w", key, err)
	}
	if e.Expired(now) {
		return nil, nil
	}
	return e, nil
}

var (
	_ driver.Layer     = (*Layer)(nil)
	_ driver.Namer     = (*Layer)(nil)
	_ driver.Timeouter = (*Layer)(nil)
	_ driver.Pinger    = (*Layer)(nil)
	_ driver.Shared    = (*Layer)(nil)
	_ driver.Aser      = (*Layer)(nil)
)
