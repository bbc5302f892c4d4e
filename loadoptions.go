package layercache

import "context"

// SetEntryOptions changes, from inside a loader, the options of the entry
// its load stores, from what the loaded value says: a token's own expiry as
// its TTL, tags known only once the value is loaded, a shorter TTL for a
// partial result. They apply after the call's own options (tags add up).
// ctx is the context the loader was given, or one derived from it. It
// reports false when ctx is not a loader's, and then does nothing.
func SetEntryOptions(ctx context.Context, opts ...EntryOption) bool {
	f := loadFrameOf(ctx)
	if f == nil {
		return false
	}
	f.mu.Lock()
	f.opts = append(f.opts, opts...)
	f.mu.Unlock()
	return true
}

// DoNotStore, called from inside a loader, has its load hand the value it
// returns to the callers that asked for it without storing it in any
// layer: a result that is partial, or that must not outlive the request.
// Callers waiting for the same key get the value too; use an error instead
// when they must not. ctx is as for [SetEntryOptions]; DoNotStore reports
// false when it is not a loader's.
func DoNotStore(ctx context.Context) bool {
	f := loadFrameOf(ctx)
	if f == nil {
		return false
	}
	f.mu.Lock()
	f.noStore = true
	f.mu.Unlock()
	return true
}
