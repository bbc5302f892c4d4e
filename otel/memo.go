package layercacheotel

import (
	"maps"
	"sync"
	"sync/atomic"
)

// maxMemo bounds a memo. The keys are combinations of a few small enums,
// the layer names and the error classes, so a real program stays far below
// it; past it, values are built per call instead of growing without end.
const maxMemo = 4096

// memo keeps values built from small keys, such as the attribute sets of an
// outcome, so that the hot path finds them with one lock-free map read
// instead of building and allocating them per call.
//
// The map is copied on every insertion and swapped in whole: insertions
// happen once per distinct key, reads on every call, and a reader then
// never takes a lock nor writes to a shared cache line (as sync.RWMutex's
// reader count would).
type memo[K comparable, V any] struct {
	m     atomic.Pointer[map[K]*V] // never mutated once stored
	mu    sync.Mutex               // serialises insertions
	build func(K) *V
}

func (c *memo[K, V]) get(k K) *V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	return c.insert(k)
}

func (c *memo[K, V]) insert(k K) *V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v := c.build(k)
	if old != nil && len(*old) >= maxMemo {
		return v
	}
	next := make(map[K]*V, 1)
	if old != nil {
		next = maps.Clone(*old)
	}
	next[k] = v
	c.m.Store(&next)
	return v
}
