package layercache

import (
	"sync"
	"time"
)

// BreakerState is the state of a layer's circuit breaker.
type BreakerState int32

// The states of a circuit breaker.
const (
	BreakerClosed   BreakerState = iota // the layer is used
	BreakerOpen                         // the layer is skipped until RetryAfter passes
	BreakerHalfOpen                     // one probe is in flight; the rest skip the layer
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// breaker skips a failing layer. It is written by hand because its policy
// is three lines (consecutive failures, a fixed retry delay, one probe) and
// it must cost one uncontended lock on the remote path.
type breaker struct {
	threshold  int
	retryAfter time.Duration
	now        func() time.Time

	mu        sync.Mutex
	state     BreakerState
	failures  int       // consecutive, while closed
	openUntil time.Time // while open
	probing   bool      // a half-open probe is in flight
	opened    uint64    // times the breaker opened, for Stats
}

func newBreaker(d Degradation) *breaker {
	return &breaker{threshold: d.FailureThreshold, retryAfter: d.RetryAfter, now: time.Now}
}

// allow reports whether an operation may use the layer now. A true result
// from an open breaker whose delay passed makes the caller the probe, and it
// must report its outcome with done.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		if b.now().Before(b.openUntil) {
			return false
		}
		b.state = BreakerHalfOpen
		b.probing = true
		return true
	default: // half-open: only the one probe
		return false
	}
}

// done records the outcome of an operation that allow let through and
// reports the state it moved to, if it moved.
func (b *breaker) done(ok bool) (changed bool, to BreakerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures = 0
		if b.state != BreakerClosed {
			b.state = BreakerClosed
			b.probing = false
			return true, BreakerClosed
		}
		return false, b.state
	}
	switch b.state {
	case BreakerClosed:
		b.failures++
		if b.failures >= b.threshold {
			b.open()
			return true, BreakerOpen
		}
	case BreakerHalfOpen:
		b.probing = false
		b.open()
		return true, BreakerOpen
	}
	return false, b.state
}

func (b *breaker) open() {
	b.state = BreakerOpen
	b.failures = 0
	b.openUntil = b.now().Add(b.retryAfter)
	b.opened++
}

// trip opens the breaker at once, for a layer known to be unreachable.
func (b *breaker) trip() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open()
}

func (b *breaker) snapshot() (BreakerState, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.opened
}
