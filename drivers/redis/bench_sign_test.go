package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

// The cost of signing is measured against the unsigned path in the same
// run and the same loop: each iteration does one of each, alternating which
// goes first, and the benchmark reports both times and their ratio, so
// that the load of a shared machine weighs on both alike.

// interleave runs unsigned and signed alternately and reports their mean
// times and ratio.
func interleave(b *testing.B, unit string, unsigned, signed func()) {
	var tu, ts time.Duration
	i := 0
	for b.Loop() {
		for j := range 2 {
			start := time.Now()
			if (i+j)%2 == 0 {
				unsigned()
				tu += time.Since(start)
			} else {
				signed()
				ts += time.Since(start)
			}
		}
		i++
	}
	b.ReportMetric(float64(tu.Nanoseconds())/float64(i), "unsigned-ns/"+unit)
	b.ReportMetric(float64(ts.Nanoseconds())/float64(i), "signed-ns/"+unit)
	b.ReportMetric(float64(ts)/float64(tu), "ratio")
}

// BenchmarkSignedValueHit reads the same entry from two layers on one
// client and server, one signing its records and one not: a Redis hit with
// and without checking the signature.
func BenchmarkSignedValueHit(b *testing.B) {
	s := redistest.Start(b)
	c := newClient(b, s)
	plain := newLayerT(b, Options{Client: c, Prefix: "u:"})
	signed := newLayerT(b, Options{Client: c, Prefix: "s:", SigningKeys: []Key{testKey(1)}})
	ctx := context.Background()
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			for _, l := range []*Layer{plain, signed} {
				if err := l.Set(ctx, "k", benchEntry(sz.n)); err != nil {
					b.Fatal(err)
				}
			}
			get := func(l *Layer) func() {
				return func() {
					if e, err := l.Get(ctx, "k"); err != nil || e == nil {
						b.Fatalf("Get = %v, %v", e, err)
					}
				}
			}
			b.ReportAllocs()
			b.SetBytes(2 * int64(sz.n))
			interleave(b, "get", get(plain), get(signed))
		})
	}
}

// BenchmarkSignedValueDecode is the layer's work on a reply without the
// network: envelope decoding, with and without the signature check.
func BenchmarkSignedValueDecode(b *testing.B) {
	c := newClient(b, redistest.Start(b))
	plain := newLayerT(b, Options{Client: c, Prefix: "u:"})
	signed := newLayerT(b, Options{Client: c, Prefix: "s:", SigningKeys: []Key{testKey(1)}})
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			e := benchEntry(sz.n)
			recs := make([][]byte, 2)
			for i, l := range []*Layer{plain, signed} {
				rec, err := l.record("k", e)
				if err != nil {
					b.Fatal(err)
				}
				recs[i] = rec
			}
			decode := func(i int, l *Layer) func() {
				return func() {
					if _, err := l.decode("k", recs[i], 0); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportAllocs()
			b.SetBytes(2 * int64(sz.n))
			interleave(b, "decode", decode(0, plain), decode(1, signed))
		})
	}
}

// BenchmarkSignedBusMessage is a bus's own work per message, without the
// network: encoding on the sender, decoding (and, signed, checking the
// signature and the replay window) on the receiver.
func BenchmarkSignedBusMessage(b *testing.B) {
	c := newClient(b, redistest.Start(b))
	plain, err := NewBus(BusOptions{Client: c, Namespace: "app"})
	if err != nil {
		b.Fatal(err)
	}
	signed, err := NewBus(BusOptions{Client: c, Namespace: "app", SigningKeys: []Key{testKey(1)}})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 100} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("user:%d", 1000+i)
		}
		m := driver.Message{Origin: "0123456789abcdef", Op: driver.OpDelete, Keys: keys}
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			roundTrip := func(bus *Bus) func() {
				return func() {
					if _, ok := bus.receive(string(bus.encode(m))); !ok {
						b.Fatal("message refused")
					}
				}
			}
			b.ReportAllocs()
			interleave(b, "msg", roundTrip(plain), roundTrip(signed))
		})
	}
}

// BenchmarkSignedBusDelivery publishes a message on one bus and waits until
// a bus of another connection has handled it, through Redis: the latency
// an invalidation sees, signed and not.
func BenchmarkSignedBusDelivery(b *testing.B) {
	s := redistest.Start(b)
	type pair struct {
		from *Bus
		got  chan struct{}
	}
	newPair := func(ns string, keys ...Key) pair {
		p := pair{got: make(chan struct{}, 1)}
		var err error
		if p.from, err = NewBus(BusOptions{Client: newClient(b, s), Namespace: ns, SigningKeys: keys}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.from.Close() })
		to, err := NewBus(BusOptions{Client: newClient(b, s), Namespace: ns, SigningKeys: keys})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = to.Close() })
		if err := to.Subscribe(context.Background(), func(driver.Message) { p.got <- struct{}{} }, func() {}); err != nil {
			b.Fatal(err)
		}
		return p
	}
	plain, signed := newPair("plain"), newPair("signed", testKey(1))
	m := driver.Message{Origin: "0123456789abcdef", Op: driver.OpDelete, Keys: []string{"user:42"}}
	ctx := context.Background()
	deliver := func(p pair) func() {
		return func() {
			if err := p.from.Publish(ctx, m); err != nil {
				b.Fatal(err)
			}
			<-p.got
		}
	}
	b.ReportAllocs()
	interleave(b, "msg", deliver(plain), deliver(signed))
}
