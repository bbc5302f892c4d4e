package layercache

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// counter is a striped event counter for the hit path: goroutines running
// at the same time mostly land on different cache lines, so counting a hit
// does not make every core fight over one line.
//
// A goroutine's stripe is picked from the address of its stack, which is
// stable while it runs and differs between goroutines that run at the same
// time; a goroutine whose stack moves simply lands on another stripe.
type counter struct {
	stripes []paddedUint64
	mask    uintptr
}

// paddedUint64 fills two cache lines: CPUs fetch lines in adjacent pairs,
// so one line of padding would still let neighbours interfere.
type paddedUint64 struct {
	n atomic.Uint64
	_ [120]byte
}

func newCounter() counter {
	// Many more stripes than processors, so that goroutines running at
	// the same time seldom pick the same one.
	n := 16
	for n < 8*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	return counter{stripes: make([]paddedUint64, n), mask: uintptr(n - 1)}
}

func (c *counter) add(delta uint64) {
	var marker byte
	// Stacks are at least 2 KiB, so the low bits say where in the frame we
	// are, not which goroutine we are; multiply to fold the upper bits down.
	h := uint64(uintptr(unsafe.Pointer(&marker))>>11) * 0x9E3779B97F4A7C15
	c.stripes[uintptr(h>>40)&c.mask].n.Add(delta)
}

func (c *counter) load() uint64 {
	var sum uint64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}
