package memcached

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/memcachedtest"
	"github.com/layercache/layercache/internal/redistest"
)

func TestServers_KeysSpreadAndOrderDoesNotMatter(t *testing.T) {
	a, b := startServer(t), startServer(t)
	ab := newLayerT(t, Options{Addrs: []string{a.Addr(), b.Addr()}})
	ba := newLayerT(t, Options{Addrs: []string{b.Addr(), a.Addr()}})
	ctx := context.Background()
	const n = 200
	for i := range n {
		k := fmt.Sprint("k", i)
		if err := ab.Set(ctx, k, &driver.Entry{Payload: []byte(k), Codec: "raw"}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(s *memcachedtest.Server) int {
		var c int
		fmt.Sscan(s.Stats(t)["curr_items"], &c)
		return c
	}
	if ca, cb := count(a), count(b); ca+cb != n || ca < n/4 || cb < n/4 {
		t.Fatalf("%d and %d items on the two servers; want %d in all, spread", ca, cb, n)
	}
	for i := range n {
		k := fmt.Sprint("k", i)
		if e, err := ba.Get(ctx, k); err != nil || e == nil || string(e.Payload) != k {
			t.Fatalf("a layer listing the servers in another order misses %q: %v, %v", k, e, err)
		}
	}
}

func TestServers_RemovingOneMovesOnlyItsKeys(t *testing.T) {
	three, err := newServerList([]string{"m1:11211", "m2:11211", "m3:11211"})
	if err != nil {
		t.Fatal(err)
	}
	two, err := newServerList([]string{"m1:11211", "m3:11211"})
	if err != nil {
		t.Fatal(err)
	}
	moved, onM2 := 0, 0
	for i := range 3000 {
		k := fmt.Sprint("key:", i)
		before, _ := three.PickServer(k)
		after, _ := two.PickServer(k)
		if before.String() == "m2:11211" {
			onM2++
			continue
		}
		if before.String() != after.String() {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d keys moved between the servers that stayed", moved)
	}
	if onM2 < 800 || onM2 > 1200 {
		t.Errorf("m2 held %d of 3000 keys; want about a third", onM2)
	}
}

func TestServers_AddressesAreKeptUnresolved(t *testing.T) {
	s, err := newServerList([]string{"/run/memcached.sock", "cache.invalid:11211"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.Each(func(a net.Addr) error {
		got = append(got, a.Network()+" "+a.String())
		if a.Network() == "tcp" {
			return errors.New("refused")
		}
		return nil
	})
	want := []string{"unix /run/memcached.sock", "tcp cache.invalid:11211"}
	if !slices.Equal(got, want) {
		t.Errorf("Each visited %q, want %q", got, want)
	}
	if err == nil || !strings.Contains(err.Error(), "cache.invalid:11211") {
		t.Errorf("Each's error %v does not name the server", err)
	}
	// A name that does not resolve is no reason to refuse the layer.
	if _, err := New(Options{Addrs: []string{"cache.invalid:11211"}}); err != nil {
		t.Errorf("New with an unresolvable host: %v", err)
	}
}

func TestGetMany_OneRoundTripPerServer(t *testing.T) {
	a, b := startServer(t), startServer(t)
	pa, pb := redistest.NewProxy(t, a.Addr()), redistest.NewProxy(t, b.Addr())
	l := newLayerT(t, Options{Addrs: []string{pa.Addr(), pb.Addr()}})
	ctx := context.Background()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
		if i%3 != 0 { // a third are misses
			if err := l.Set(ctx, keys[i], &driver.Entry{Payload: []byte(keys[i]), Codec: "raw"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pa.Reset()
	pb.Reset()
	es, err := l.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if want := i%3 != 0; (e != nil) != want || (e != nil && string(e.Payload) != keys[i]) {
			t.Fatalf("GetMany[%d] = %v", i, e)
		}
	}
	if wa, wb := pa.UpstreamWrites(), pb.UpstreamWrites(); wa != 1 || wb != 1 {
		t.Fatalf("GetMany of 100 keys took %d and %d round trips to the two servers, want 1 each", wa, wb)
	}
}

func TestGetMany_LargeBatch(t *testing.T) {
	s := startServer(t)
	l := newLayerT(t, Options{Addrs: []string{s.Addr()}, Prefix: "span:"})
	ctx := context.Background()
	const n = 2500
	keys := make([]string, 0, n+2)
	for i := range n {
		k := fmt.Sprint("k", i, strings.Repeat("-", i%40))
		keys = append(keys, k)
		if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k), Codec: "raw"}); err != nil {
			t.Fatal(err)
		}
	}
	keys = append(keys, "absent", keys[7])
	es, err := l.GetMany(ctx, keys)
	if err != nil {
		t.Fatalf("GetMany of %d keys: %v", len(keys), err)
	}
	for i, k := range keys {
		if k == "absent" {
			if es[i] != nil {
				t.Errorf("GetMany[%d] (absent) = %v", i, es[i])
			}
			continue
		}
		if es[i] == nil || string(es[i].Payload) != k {
			t.Fatalf("GetMany[%d] (%q) = %v", i, k, es[i])
		}
	}
}

func TestPing_NamesTheServerThatIsDown(t *testing.T) {
	a, b := startServer(t), startServer(t)
	l := newLayerT(t, Options{Addrs: []string{a.Addr(), b.Addr()}})
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatalf("Ping with both servers up: %v", err)
	}
	b.Kill()
	err := l.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), b.Addr()) || strings.Contains(err.Error(), a.Addr()) {
		t.Fatalf("Ping with %s down = %v; want an error naming it", b.Addr(), err)
	}
}
