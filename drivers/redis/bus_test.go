package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

// quietLogger drops the warnings that fault tests provoke on purpose.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder collects what a bus delivers.
type recorder struct {
	mu     sync.Mutex
	msgs   []driver.Message
	resets int
}

func (r *recorder) handle(m driver.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.resets++
	r.mu.Unlock()
}

func (r *recorder) snapshot() ([]driver.Message, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs), r.resets
}

// newBusT returns a subscribed bus on client, closed in t.Cleanup.
func newBusT(t testing.TB, client goredis.UniversalClient, ns string) (*Bus, *recorder) {
	t.Helper()
	b, err := NewBus(BusOptions{Client: client, Namespace: ns, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	r := &recorder{}
	if err := b.Subscribe(context.Background(), r.handle, r.reset); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return b, r
}

func TestBusMessage_RoundTrips(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("user:%d", i)
	}
	for _, m := range []driver.Message{
		{Origin: "a1", Op: driver.OpSet, Keys: []string{"k"}},
		{Origin: "a1", Op: driver.OpDelete, Keys: many},
		{Origin: "", Op: driver.OpInvalidate, Tags: []string{"users", "", "ключ", strings.Repeat("t", 300)}},
		{Origin: "x", Op: driver.OpClear},
		{Origin: "x", Op: driver.Op(200), Keys: []string{"\x00\xff"}}, // an operation of a later version is passed on
	} {
		got, err := decodeMessage(string(encodeMessage(m)))
		if err != nil {
			t.Fatalf("decode(encode(%v)): %v", m.Op, err)
		}
		if got.Origin != m.Origin || got.Op != m.Op || !slices.Equal(got.Keys, m.Keys) || !slices.Equal(got.Tags, m.Tags) {
			t.Errorf("round trip of %+v gave %+v", m, got)
		}
	}
}

func TestDecodeMessage_RejectsMalformed(t *testing.T) {
	valid := string(encodeMessage(driver.Message{Origin: "o", Op: driver.OpSet, Keys: []string{"k"}}))
	for name, p := range map[string]string{
		"empty":             "",
		"one byte":          "\x01",
		"other version":     "\x02" + valid[1:],
		"version zero":      "\x00" + valid[1:],
		"truncated":         valid[:len(valid)-1],
		"trailing bytes":    valid + "x",
		"huge key count":    "\x01\x01\x00\xff\xff\xff\xff\x0f",
		"huge string":       "\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		"overlong varint":   "\x01\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00",
		"count beyond data": "\x01\x01\x00\x05\x00",
	} {
		if _, err := decodeMessage(p); err == nil || errors.Is(err, errProbe) {
			t.Errorf("%s: decode(%q) = %v, want an error", name, p, err)
		}
	}
	if _, err := decodeMessage(string(probeMessage)); !errors.Is(err, errProbe) {
		t.Errorf("probe decodes as %v", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(driver.Message{Origin: "o", Op: driver.OpDelete, Keys: []string{"a", "b"}, Tags: []string{"t"}}))
	f.Add(probeMessage)
	f.Add([]byte("\x01\x01\x00\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeMessage(string(p))
		if err != nil {
			return
		}
		// What decodes must encode back to the same bytes, but for
		// non-minimal varints, which are accepted.
		again, err := decodeMessage(string(encodeMessage(m)))
		if err != nil || again.Op != m.Op || again.Origin != m.Origin || !slices.Equal(again.Keys, m.Keys) || !slices.Equal(again.Tags, m.Tags) {
			t.Fatalf("re-encoding %+v gave %+v, %v", m, again, err)
		}
	})
}

func TestBus_DeliversToEverySubscriberOfTheNamespace(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a, ra := newBusT(t, newClient(t, s), "app")
	_, rb := newBusT(t, newClient(t, s), "app")
	_, rOther := newBusT(t, newClient(t, s), "other")

	m := driver.Message{Origin: "a", Op: driver.OpDelete, Keys: []string{"k1", "k2"}}
	if err := a.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*recorder{"sender": ra, "peer": rb} {
		waitFor(t, name+" to receive", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 1 })
		msgs, resets := r.snapshot()
		if got := msgs[0]; got.Op != m.Op || got.Origin != "a" || !slices.Equal(got.Keys, m.Keys) {
			t.Errorf("%s received %+v, want %+v", name, got, m)
		}
		// The first subscription counts as one: the cache drops what it
		// held before it was connected.
		if resets != 1 {
			t.Errorf("%s: reset called %d times, want 1", name, resets)
		}
	}
	// A message to this namespace, published after the one above, proves
	// by its arrival that the other namespace had its chance.
	if err := a.Publish(context.Background(), driver.Message{Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{ra, rb} {
		waitFor(t, "second message", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 2 })
	}
	if msgs, _ := rOther.snapshot(); len(msgs) != 0 {
		t.Errorf("another namespace received %v", msgs)
	}
	if st := a.Stats(); st.Published != 2 || st.Received != 2 || st.Resets != 1 || st.Malformed != 0 {
		t.Errorf("sender stats = %+v", st)
	}
}

func TestBus_MalformedMessageIsCountedAndDropped(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b, r := newBusT(t, newClient(t, s), "app")
	for _, junk := range []string{"", "hello", "\x09\x01\x00\x00\x00", string(encodeMessage(driver.Message{Op: driver.OpSet}))[:3]} {
		s.Do(t, "PUBLISH", b.Channel(), junk)
	}
	if err := b.Publish(context.Background(), driver.Message{Origin: "x", Op: driver.OpSet, Keys: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	// Messages on one channel arrive in order: once the valid one is in,
	// every malformed one has been seen.
	waitFor(t, "the valid message", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 1 })
	if st := b.Stats(); st.Malformed != 4 || st.Received != 1 {
		t.Errorf("stats = %+v, want 4 malformed and 1 received", st)
	}
}

func TestBus_ResetsAfterReconnecting(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	b, r := newBusT(t, newClient(t, s), "app")
	s.Do(t, "CLIENT", "KILL", "TYPE", "pubsub")
	waitFor(t, "reset after reconnecting", func() bool { _, n := r.snapshot(); return n == 2 })
	// And the new subscription delivers.
	if err := b.Publish(context.Background(), driver.Message{Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message after reconnecting", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 1 })
}

func TestBus_SubscribeWithServerDownConnectsLater(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	s.Kill()
	b, r := newBusT(t, client, "app") // no error: the cache starts degraded
	if _, n := r.snapshot(); n != 0 {
		t.Fatalf("reset called %d times before any subscription", n)
	}
	s.Restart()
	waitFor(t, "the subscription once the server is back", func() bool { _, n := r.snapshot(); return n == 1 })
	if err := b.Publish(context.Background(), driver.Message{Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 1 })
}

// aclClient returns a client logged in as a user made with rules.
func aclClient(t *testing.T, s *redistest.Server, user string, rules ...string) *goredis.Client {
	t.Helper()
	args := []any{"ACL", "SETUSER", user, "on", ">pw", "~*", "+@all"}
	for _, r := range rules {
		args = append(args, r)
	}
	s.Do(t, args...)
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Username: user, Password: "pw", ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestBus_SubscribeWithoutChannelRightsFails(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	for _, tc := range []struct {
		name  string
		rules []string
	}{
		{"no channels", []string{"resetchannels"}},
		{"other channels only", []string{"resetchannels", "&elsewhere:*"}},
		{"subscribe but not publish", []string{"allchannels", "-publish"}},
		{"publish but not subscribe", []string{"allchannels", "-subscribe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := aclClient(t, s, "u"+strings.ReplaceAll(tc.name, " ", ""), tc.rules...)
			b, err := NewBus(BusOptions{Client: c, Namespace: "app", Logger: quietLogger})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			err = b.Subscribe(context.Background(), func(driver.Message) {}, func() {})
			if err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), b.Channel()) {
				t.Fatalf("Subscribe = %v, want a NOPERM error naming channel %q", err, b.Channel())
			}
		})
	}
}

func TestNewBus_RejectsImpossibleOptions(t *testing.T) {
	if _, err := NewBus(BusOptions{}); err == nil {
		t.Error("NewBus without a client succeeded")
	}
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewBus(BusOptions{Client: c, Timeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("negative timeout: %v", err)
	}
	b, err := NewBus(BusOptions{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), driver.Message{}); err == nil {
		t.Error("Publish of a message without an operation succeeded")
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
	if err := b.Subscribe(context.Background(), func(driver.Message) {}, func() {}); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
}

// nsBlock is a yamlBlock in a namespace.
type nsBlock struct {
	yamlBlock
	ns string
}

func (b nsBlock) Namespace() string { return b.ns }

func openBus(t *testing.T, text string, s driver.Stack) (*Bus, error) {
	t.Helper()
	d, _ := driver.Lookup("redis")
	b, err := d.(driver.BusDriver).OpenBus(context.Background(), nsBlock{yamlBlock{path: "bus", text: text}, s.Namespace}, s)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.(*Bus), nil
}

func TestOpenBus_SharesTheLayersClientOrOwnsItsOwn(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	client := newClient(t, s)
	layer := newLayerT(t, Options{Client: client, Prefix: "p:"})
	stack := driver.Stack{Namespace: "app", Layers: []driver.Layer{layer}}

	shared, err := openBus(t, "timeout: 1s\n", stack)
	if err != nil {
		t.Fatal(err)
	}
	if shared.client != goredis.UniversalClient(client) || shared.owned || shared.timeout != time.Second || shared.Channel() != "layercache:app:bus" {
		t.Errorf("shared bus: client shared %v, owned %v, timeout %v, channel %q", shared.client == goredis.UniversalClient(client), shared.owned, shared.timeout, shared.Channel())
	}
	if err := shared.Close(); err != nil {
		t.Fatal(err)
	}
	// The layer's client is still open.
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the layer's client was closed with the bus: %v", err)
	}

	own, err := openBus(t, "url: "+s.URL()+"\n", stack)
	if err != nil {
		t.Fatal(err)
	}
	if own.client == goredis.UniversalClient(client) || !own.owned {
		t.Error("a bus with a url does not own a client of its own")
	}
	if err := own.Close(); err != nil {
		t.Fatal(err)
	}
	if err := own.client.Ping(context.Background()).Err(); !errors.Is(err, goredis.ErrClosed) {
		t.Errorf("the bus's own client after Close: Ping = %v, want ErrClosed", err)
	}

	for text, want := range map[string]string{
		"{}\n":                               "no redis layer",
		"password: x\n":                      "without url or addrs",
		"url: ftp://x\n":                     "url",
		"timeout: -1s\n":                     "negative",
		"tiemout: 1s\n":                      "tiemout",
		"master_name: m\n":                   "master_name needs",
		"addrs: [a]\nurl: " + s.URL() + "\n": "exclusive",
	} {
		st := stack
		if text == "{}\n" {
			st = driver.Stack{Namespace: "app"}
		}
		if _, err := openBus(t, text, st); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenBus(%q) = %v, want an error containing %q", text, err, want)
		}
	}
}
