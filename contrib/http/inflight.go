package httpcache

import (
	"context"
	"errors"
	"sync"
)

// errPassedThrough is the cause given to the requests waiting on a key
// whose handler started sending its response to its own client (it
// streams, or its body is too large to store): there will be nothing to
// share, so they stop waiting and run the handler themselves.
var errPassedThrough = errors.New("httpcache: response passed through uncached")

// inflight tracks the requests that are in the cache's single-flight for a
// key, so that they need not wait for a handler that streams. The cache's
// single-flight hands waiters the leader's result when the leader's handler
// returns, which for a stream may be much later, or never: when the leader
// passes through, inflight cancels the other requests' waits at once, and
// sends the requests that arrive while it streams straight to the handler.
type inflight struct {
	mu   sync.Mutex
	keys map[string]*keyFlight
}

type keyFlight struct {
	members []*member
	passing bool // a member passes its response through
}

// member is one request in the single-flight of a key.
type member struct{ cancel context.CancelCauseFunc }

// enter adds a request whose wait is cancelled with cancel. It returns
// false when a request for key is passing through already.
func (f *inflight) enter(key string, cancel context.CancelCauseFunc) (*member, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = make(map[string]*keyFlight)
	}
	kf := f.keys[key]
	if kf == nil {
		kf = &keyFlight{}
		f.keys[key] = kf
	}
	if kf.passing {
		return nil, false
	}
	m := &member{cancel: cancel}
	kf.members = append(kf.members, m)
	return m, true
}

// leave removes m, and key once nobody is in its flight.
func (f *inflight) leave(key string, m *member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kf := f.keys[key]
	if kf == nil {
		return
	}
	for i, x := range kf.members {
		if x == m {
			kf.members = append(kf.members[:i], kf.members[i+1:]...)
			break
		}
	}
	if len(kf.members) == 0 {
		delete(f.keys, key)
	}
}

// passThrough records that leader passes its response through, and
// releases every other member of key's flight.
func (f *inflight) passThrough(key string, leader *member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kf := f.keys[key]
	if kf == nil {
		return
	}
	kf.passing = true
	for _, m := range kf.members {
		if m != leader {
			m.cancel(errPassedThrough)
		}
	}
}
