package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/memory"
	"github.com/layercache/layercache/internal/keyring"
	"github.com/layercache/layercache/internal/redistest"
)

// newSignedBusT returns a subscribed bus with keys, closed in t.Cleanup.
func newSignedBusT(t testing.TB, client goredis.UniversalClient, keys ...Key) (*Bus, *recorder) {
	t.Helper()
	b, err := NewBus(BusOptions{Client: client, Namespace: "app", Logger: quietLogger, SigningKeys: keys})
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

// signedWire signs m as a bus with keys would, at sentAt with nonce.
func signedWire(t testing.TB, m driver.Message, sentAt time.Time, nonce uint64, channel string, keys ...Key) []byte {
	t.Helper()
	s, err := keyring.NewSigner("signing_keys", busLabel, rawKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	var n [nonceSize]byte
	binary.LittleEndian.PutUint64(n[:], nonce)
	return encodeSigned(m, sentAt.UnixMilli(), n, s, channel)
}

// barrier publishes a genuine message and waits until r has it: messages
// on one channel arrive in order, so everything published before it has
// been seen by then.
func barrier(t *testing.T, from *Bus, r *recorder, want int) {
	t.Helper()
	if err := from.Publish(context.Background(), driver.Message{Origin: "barrier", Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the barrier message", func() bool { msgs, _ := r.snapshot(); return len(msgs) == want })
	msgs, _ := r.snapshot()
	if last := msgs[len(msgs)-1]; last.Origin != "barrier" {
		t.Fatalf("last message %+v, want the barrier", last)
	}
}

func TestSignedBus_DropsEveryMessageWithoutAValidSignature(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	k1, k9 := testKey(1), testKey(9)
	sender, _ := newSignedBusT(t, newClient(t, s), k1)
	receiver, r := newSignedBusT(t, newClient(t, s), k1)
	ch := receiver.Channel()
	m := driver.Message{Origin: "mallory", Op: driver.OpDelete, Keys: []string{"user:1"}}
	now := time.Now()

	genuine := signedWire(t, m, now, 1, ch, k1)
	tampered := slices.Clone(genuine)
	tampered[len(tampered)-keyring.TrailerSize-2] ^= 1 // a byte of the key "user:1"
	reKeyed := signedWire(t, m, now, 2, ch, k9)
	ourID := keyring.IDOf(k1)
	copy(reKeyed[len(reKeyed)-keyring.TrailerSize:], ourID[:]) // claims our key

	forged := map[string][]byte{
		"unsigned (version 1)":              encodeMessage(m),
		"signed with another key":           signedWire(t, m, now, 3, ch, k9),
		"another key claiming our key id":   reKeyed,
		"tampered after signing":            tampered,
		"signed for another namespace":      signedWire(t, m, now, 4, channelName("other", "bus"), k1),
		"signature cut off":                 genuine[:len(genuine)-keyring.TrailerSize],
		"junk":                              []byte("hello"),
		"empty":                             {},
		"version 2 header with no trailer":  {busVersionSigned, byte(driver.OpClear), 0, 0, 0, 0, 0, 0, 0, 0},
		"signed, then one byte appended":    append(slices.Clone(genuine), 0),
		"signed key id, signature all zero": append(genuine[:len(genuine)-keyring.MACSize:len(genuine)-keyring.MACSize], make([]byte, keyring.MACSize)...),
	}
	for _, p := range forged {
		s.Do(t, "PUBLISH", ch, p)
	}
	barrier(t, sender, r, 1)
	if st := receiver.Stats(); st.Unauthenticated != uint64(len(forged)) || st.Replayed != 0 || st.Received != 1 {
		t.Errorf("stats = %+v; want %d unauthenticated, 1 received", st, len(forged))
	}

	// The genuine message, published once, is applied: the forgeries above
	// were refused for what they were, not for being published by hand.
	s.Do(t, "PUBLISH", ch, genuine)
	waitFor(t, "the genuine message", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 2 })
	msgs, _ := r.snapshot()
	if got := msgs[1]; got.Origin != "mallory" || got.Op != driver.OpDelete || !slices.Equal(got.Keys, m.Keys) {
		t.Errorf("applied %+v, want %+v", got, m)
	}
}

func TestSignedBus_DropsReplays(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	k := testKey(1)
	sender, _ := newSignedBusT(t, newClient(t, s), k)
	receiver, r := newSignedBusT(t, newClient(t, s), k)
	ch := receiver.Channel()
	m := driver.Message{Origin: "o", Op: driver.OpInvalidate, Tags: []string{"users"}}

	fresh := signedWire(t, m, time.Now(), 10, ch, k)
	s.Do(t, "PUBLISH", ch, fresh)
	barrier(t, sender, r, 2)
	for _, p := range [][]byte{
		fresh, // heard before
		signedWire(t, m, time.Now().Add(-DefaultReplayWindow-time.Second), 11, ch, k), // recorded long ago
		signedWire(t, m, time.Now().Add(DefaultReplayWindow+time.Minute), 12, ch, k),  // from the future
	} {
		s.Do(t, "PUBLISH", ch, p)
	}
	barrier(t, sender, r, 3)
	if st := receiver.Stats(); st.Replayed != 3 || st.Unauthenticated != 0 || st.Received != 3 {
		t.Errorf("stats = %+v; want 3 replayed, 3 received", st)
	}
}

func TestSignedBus_KeyRotation(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	k1, k2 := testKey(1), testKey(2)
	oldOnly, rOld := newSignedBusT(t, newClient(t, s), k1)
	rotating, rRot := newSignedBusT(t, newClient(t, s), k2, k1)
	newOnly, rNew := newSignedBusT(t, newClient(t, s), k2)

	// An instance still on the old key is heard by the rotating one.
	if err := oldOnly.Publish(context.Background(), driver.Message{Origin: "old", Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	// The rotating instance signs with the new key: heard by the new-only
	// instance, not by the old-only one.
	if err := rotating.Publish(context.Background(), driver.Message{Origin: "rotating", Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	if err := newOnly.Publish(context.Background(), driver.Message{Origin: "new", Op: driver.OpClear}); err != nil {
		t.Fatal(err)
	}
	origins := func(r *recorder) []string {
		msgs, _ := r.snapshot()
		var o []string
		for _, m := range msgs {
			o = append(o, m.Origin)
		}
		return o
	}
	// Each bus hears its own messages too; three were published.
	waitFor(t, "every message", func() bool {
		return oldOnly.Stats().Received+oldOnly.Stats().Unauthenticated == 3 &&
			rotating.Stats().Received+rotating.Stats().Unauthenticated == 3 &&
			newOnly.Stats().Received+newOnly.Stats().Unauthenticated == 3
	})
	for name, tc := range map[string]struct {
		r    *recorder
		want []string
	}{
		"old key only": {rOld, []string{"old"}},
		"rotating":     {rRot, []string{"old", "rotating", "new"}},
		"new key only": {rNew, []string{"rotating", "new"}},
	} {
		if got := origins(tc.r); !slices.Equal(got, tc.want) {
			t.Errorf("%s heard %v, want %v", name, got, tc.want)
		}
	}
}

func TestBus_WithoutKeysReadsSignedMessages(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	signer, _ := newSignedBusT(t, newClient(t, s), testKey(1))
	_, r := newBusT(t, newClient(t, s), "app")
	m := driver.Message{Origin: "o", Op: driver.OpSet, Keys: []string{"a", "b"}, Tags: []string{"t"}}
	if err := signer.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message", func() bool { msgs, _ := r.snapshot(); return len(msgs) == 1 })
	msgs, _ := r.snapshot()
	if got := msgs[0]; got.Origin != m.Origin || got.Op != m.Op || !slices.Equal(got.Keys, m.Keys) || !slices.Equal(got.Tags, m.Tags) {
		t.Errorf("received %+v, want %+v", got, m)
	}
}

// TestSignedInstances_ForgedInvalidationChangesNothing runs two caches
// with signed buses: a genuine Delete from one drops the other's L1 copy,
// and forged, unsigned, re-signed and replayed Deletes published on the
// channel leave it in place.
func TestSignedInstances_ForgedInvalidationChangesNothing(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	k := testKey(1)
	a := newSignedInstance(t, s, k)
	b := newSignedInstance(t, s, k)
	ctx := context.Background()
	warm := func(key string) {
		t.Helper()
		if _, err := layercache.Get(ctx, b.cache, key, constLoader("v"), layercache.WithTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if e, _ := b.mem.Get(ctx, key); e == nil {
			t.Fatalf("%s is not in b's L1", key)
		}
	}
	warm("victim")
	ch := b.bus.Channel()
	m := driver.Message{Origin: "mallory", Op: driver.OpDelete, Keys: []string{"victim"}}
	replayable := signedWire(t, driver.Message{Origin: "mallory", Op: driver.OpClear}, time.Now(), 99, ch, k)
	s.Do(t, "PUBLISH", ch, replayable) // recorded by an eavesdropper; clears b's L1 once
	waitFor(t, "the recorded message", func() bool { return b.bus.Stats().Received == 1 })
	warm("victim")
	for _, p := range [][]byte{
		encodeMessage(m),
		encodeMessage(driver.Message{Origin: "mallory", Op: driver.OpClear}),
		signedWire(t, m, time.Now(), 1, ch, testKey(9)),
		signedWire(t, m, time.Now().Add(-time.Hour), 2, ch, k),
		replayable,
	} {
		s.Do(t, "PUBLISH", ch, p)
	}
	// A genuine message about another key, after the forgeries: once b has
	// applied it, it has seen them all.
	if err := a.cache.Delete(ctx, "unrelated"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the genuine delete", func() bool { return b.bus.Stats().Received == 2 })
	if e, _ := b.mem.Get(ctx, "victim"); e == nil {
		t.Fatal("a forged or replayed message dropped the key from b's L1")
	}
	if st := b.bus.Stats(); st.Unauthenticated != 3 || st.Replayed != 2 {
		t.Errorf("b's bus stats = %+v; want 3 unauthenticated, 2 replayed", st)
	}

	// The genuine path works: the same Delete from a drops it.
	if err := a.cache.Delete(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the genuine delete of the victim", func() bool { e, _ := b.mem.Get(ctx, "victim"); return e == nil })
}

// newSignedInstance is a cache over memory and a signed Redis layer, with a
// signed bus.
func newSignedInstance(t *testing.T, s *redistest.Server, key Key) *instance {
	t.Helper()
	in := &instance{client: newClient(t, s)}
	var err error
	if in.mem, err = memory.New(memory.Options{}); err != nil {
		t.Fatal(err)
	}
	in.l2 = newLayerT(t, Options{Client: in.client, Prefix: "app:", SigningKeys: []Key{key}})
	if in.bus, err = NewBus(BusOptions{Client: in.client, Namespace: "app", Logger: quietLogger, SigningKeys: []Key{key}}); err != nil {
		t.Fatal(err)
	}
	in.cache, err = layercache.New([]driver.Layer{in.mem, in.l2}, layercache.WithNamespace("app"),
		layercache.WithBus(in.bus), layercache.WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.cache.Close() })
	return in
}

func TestReplayGuard(t *testing.T) {
	const window = 1000
	nonce := func(i int) [nonceSize]byte {
		var n [nonceSize]byte
		binary.LittleEndian.PutUint64(n[:], uint64(i))
		return n
	}
	g := newReplayGuard(window * time.Millisecond)
	now := int64(1_000_000)
	for _, tc := range []struct {
		name    string
		now     int64
		sentAt  int64
		nonce   int
		admit   bool
		remains int
	}{
		{"fresh", now, now, 1, true, 1},
		{"same nonce again", now + 1, now, 1, false, 1},
		{"another nonce, same time", now + 1, now, 2, true, 2},
		{"at the window's old edge", now + window, now, 3, true, 3},
		{"just outside it", now + window + 1, now, 4, false, 0},
		{"nonce 1 again, now too old", now + window + 1, now, 1, false, 0},
		{"from the near future", now, now + window, 5, true, 1},
		{"from beyond the window", now, now + window + 1, 6, false, 1},
	} {
		if got := g.admit(tc.now, tc.sentAt, nonce(tc.nonce)); got != tc.admit {
			t.Errorf("%s: admit = %v, want %v", tc.name, got, tc.admit)
		}
		if len(g.seen) != tc.remains {
			t.Errorf("%s: remembers %d nonces, want %d", tc.name, len(g.seen), tc.remains)
		}
	}
}

func TestReplayGuard_FullMemoryRefusesWhatItForgot(t *testing.T) {
	g := newReplayGuard(time.Hour)
	nonce := func(i int) [nonceSize]byte {
		var n [nonceSize]byte
		binary.LittleEndian.PutUint64(n[:], uint64(i))
		return n
	}
	now := int64(1_000_000_000)
	for i := range maxRemembered {
		if !g.admit(now, now-int64(maxRemembered)+int64(i), nonce(i)) {
			t.Fatalf("message %d refused", i)
		}
	}
	// One more forgets the oldest, whose replay must then be refused.
	if !g.admit(now, now, nonce(-1)) {
		t.Fatal("a new message was refused when memory is full")
	}
	if len(g.seen) != maxRemembered {
		t.Fatalf("remembers %d nonces, want at most %d", len(g.seen), maxRemembered)
	}
	if g.admit(now, now-int64(maxRemembered), nonce(0)) {
		t.Fatal("the replay of a forgotten message was admitted")
	}
	if !g.admit(now, now, nonce(-2)) {
		t.Fatal("a new message was refused after the replay")
	}
}

func TestNewBus_ReplayWindowIsChecked(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for name, o := range map[string]BusOptions{
		"without keys": {ReplayWindow: time.Minute},
		"negative":     {ReplayWindow: -time.Second, SigningKeys: []Key{testKey(1)}},
		"below 1ms":    {ReplayWindow: time.Microsecond, SigningKeys: []Key{testKey(1)}},
	} {
		o.Client = c
		if _, err := NewBus(o); err == nil || !strings.Contains(err.Error(), "replay_window") {
			t.Errorf("%s: NewBus = %v; want an error naming replay_window", name, err)
		}
	}
}

func FuzzDecodeSigned(f *testing.F) {
	k := testKey(1)
	f.Add(signedWire(f, driver.Message{Origin: "o", Op: driver.OpDelete, Keys: []string{"a"}}, time.Now(), 1, "c", k))
	f.Add([]byte{busVersionSigned, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		sm, err := decodeSigned(string(p))
		if err != nil {
			return
		}
		s, _ := keyring.NewSigner("k", busLabel, rawKeys([]Key{k}))
		again := encodeSigned(sm.Message, sm.sentAt, sm.nonce, s, "c")
		back, err := decodeSigned(string(again[:len(again)-keyring.TrailerSize]))
		if err != nil || back.Op != sm.Op || back.Origin != sm.Origin || back.sentAt != sm.sentAt ||
			!slices.Equal(back.Keys, sm.Keys) || !slices.Equal(back.Tags, sm.Tags) {
			t.Fatalf("re-encoding %+v gave %+v, %v", sm, back, err)
		}
	})
}

func ExampleBusOptions_signingKeys() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	// In production the keys come from a secret store or the environment.
	current, previous := Key(strings.Repeat("k", 32)), Key(strings.Repeat("p", 32))
	bus, err := NewBus(BusOptions{Client: client, Namespace: "myapp", SigningKeys: []Key{current, previous}})
	if err != nil {
		panic(err)
	}
	defer bus.Close()
	fmt.Println(bus.Channel(), BusOptions{SigningKeys: []Key{current}}.SigningKeys)
	// Output: layercache:myapp:bus [[redacted]]
}
