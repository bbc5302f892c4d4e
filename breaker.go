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

// outcome is what an operation let through by allow says about the layer.
type outcome int8

const (
	healthy   outcome = iota // it answered
	sick                     // it failed or timed out
	undecided                // the caller gave up first: nothing learnt
)

// allow reports whether an operation may use the layer now. When an open
// breaker's delay has passed, the caller becomes the one probe (probe is
// true); it and every other caller let through report with done.
func (b *breaker) allow() (ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true, false
	case BreakerOpen:
		if b.now().Before(b.openUntil) {
			return false, false
		}
		b.state = BreakerHalfOpen
		b.probing = true
		return true, true
	default: // half-open: only the one probe
		return false, false
	}
}

// done records the outcome of an operation that allow let through and
// reports the state the breaker moved to, if it moved. Only the probe moves
// an open breaker: an operation that began before the breaker opened says
// nothing about the layer now.
func (b *breaker) done(probe bool, o outcome) (changed bool, to BreakerState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == BreakerClosed && !probe:
		switch o {
		case healthy:
			b.failures = 0
		case sick:
			b.failures++
			if b.failures >= b.threshold {
				b.open()
				return true, BreakerOpen
			}
		}
	case b.state == BreakerHalfOpen && probe:
		b.probing = false
		switch o {
		case healthy:
			b.state = BreakerClosed
			b.failures = 0
			return true, BreakerClosed
		case sick:
			b.open()
			return true, BreakerOpen
		default:
			// The probe's caller left: let the next caller probe at once.
			b.state = BreakerOpen
			b.openUntil = b.now()
		}
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

// status returns the breaker's state and, while it is open, when it lets
// the next probe through (the zero time otherwise), read together so that
// the two agree.
func (b *breaker) status() (BreakerState, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != BreakerOpen {
		return b.state, time.Time{}
	}
	return b.state, b.openUntil
}
