package redis

import "time"

// DefaultReplayWindow is the default of BusOptions.ReplayWindow.
const DefaultReplayWindow = 30 * time.Second

// maxRemembered bounds the nonces a bus keeps to recognise a message heard
// twice: about 3 MiB at most.
const maxRemembered = 1 << 16

// replayGuard refuses signed messages that are too old, too far in the
// future, or heard before. A message older than the window is refused by
// its age; within the window, by its nonce, which the guard remembers for
// as long as the message's age would let it in.
//
// Memory is bounded: when more than maxRemembered messages arrive within
// one window, the oldest nonce is forgotten and the guard refuses, from
// then on, every message sent no later than that one, so a forgotten
// nonce can never be replayed. Only a message delayed longer than the
// guard's memory, under such a burst, is wrongly refused.
//
// It is used by the bus's delivery goroutine alone.
type replayGuard struct {
	window int64 // milliseconds
	seen   map[[nonceSize]byte]struct{}
	queue  []remembered // in arrival order; head is queue[head]
	head   int
	floor  int64 // messages sent at or before this are refused, Unix ms
}

type remembered struct {
	sentAt int64
	nonce  [nonceSize]byte
}

func newReplayGuard(window time.Duration) *replayGuard {
	return &replayGuard{window: window.Milliseconds(), seen: make(map[[nonceSize]byte]struct{})}
}

// admit decides whether a message sent at sentAt (Unix ms) with nonce is
// new, at now (Unix ms), and remembers it if so.
func (g *replayGuard) admit(now, sentAt int64, nonce [nonceSize]byte) bool {
	g.forget(now)
	if sentAt < now-g.window || sentAt > now+g.window || sentAt <= g.floor {
		return false
	}
	if _, dup := g.seen[nonce]; dup {
		return false
	}
	if len(g.seen) >= maxRemembered {
		old := g.pop()
		g.floor = max(g.floor, old.sentAt)
		if sentAt <= g.floor {
			return false
		}
	}
	g.seen[nonce] = struct{}{}
	g.queue = append(g.queue, remembered{sentAt, nonce})
	return true
}

// forget drops the nonces of messages that their age alone now refuses.
func (g *replayGuard) forget(now int64) {
	for g.head < len(g.queue) && g.queue[g.head].sentAt < now-g.window {
		g.pop()
	}
}

func (g *replayGuard) pop() remembered {
	r := g.queue[g.head]
	g.queue[g.head] = remembered{}
	g.head++
	delete(g.seen, r.nonce)
	if g.head == len(g.queue) {
		g.queue, g.head = g.queue[:0], 0
	} else if g.head > len(g.queue)/2 && g.head > 1024 {
		// Compact, so the slice does not grow with every message ever
		// heard.
		n := copy(g.queue, g.queue[g.head:])
		g.queue, g.head = g.queue[:n], 0
	}
	return r
}
