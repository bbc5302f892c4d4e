package layercache

import (
	"math"
	"slices"
	"time"
)

// EntryOption configures how one call reads and writes its entry. Build one
// with WithTTL, WithTags and the other With functions of this kind; the zero
// EntryOption does nothing.
//
// EntryOption is a small value rather than a function so that passing
// options to [Get] allocates nothing, even on the hit path.
type EntryOption struct {
	kind entryOptionKind
	d    time.Duration
	f    float64
	tags []string
	// rare holds the payload of options that need more than a number
	// (a bound loader's batch function), behind one pointer so that the
	// options passed to every Get stay small.
	rare *rareOption
}

type rareOption struct{ batch any }

type entryOptionKind uint8

const (
	optNone entryOptionKind = iota
	optTTL
	optTags
	optNegativeTTL
	optStaleWhileRevalidate
	optStaleIfError
	optEarlyRefresh
	optJitter
	optAlign
	optAdaptive
	optSliding
	optBatch             // bound loaders only
	optBackgroundRefresh // bound loaders only
	optOriginBreaker     // bound loaders only
)

// entryOptions is the resolved form of a call's EntryOptions over the
// cache's defaults.
type entryOptions struct {
	ttl          time.Duration
	negativeTTL  time.Duration
	swr          time.Duration
	staleIfError time.Duration
	earlyRefresh time.Duration
	jitter       float64
	adaptiveMax  time.Duration // WithAdaptiveTTL's cap; 0: off
	slidingIdle  time.Duration // WithSlidingTTL's window; 0: off
	slidingMax   time.Duration
	align        time.Duration // fresh until the next boundary of align, when > 0
	alignIn      int           // where boundaries are counted from midnight: an index in locations
	tags         []string
}

// WithTTL sets how long the entry stays fresh. Zero leaves the lifetime to
// each layer's own TTL. Each layer keeps the entry for at most its own TTL.
func WithTTL(d time.Duration) EntryOption { return EntryOption{kind: optTTL, d: d} }

// WithTags attaches invalidation tags to the entry: [Cache.InvalidateTags]
// with any of them removes it from every layer on every instance. Tags add
// up: several WithTags, and tags given in [WithDefaults], all apply.
func WithTags(tags ...string) EntryOption { return EntryOption{kind: optTags, tags: tags} }

// WithNegativeTTL sets how long a loader's [ErrNotFound] is cached. Zero
// does not cache absences.
func WithNegativeTTL(d time.Duration) EntryOption {
	return EntryOption{kind: optNegativeTTL, d: d}
}

// WithStaleWhileRevalidate keeps serving an entry for d after it went stale
// while one caller refreshes it. Every other caller that reads the key
// during the refresh is served the stale value at once; the refreshing
// caller runs the loader on its own goroutine and returns the fresh value.
// (Running the loader on a caller's goroutine is what lets [Get] take a
// closure without allocating.)
func WithStaleWhileRevalidate(d time.Duration) EntryOption {
	return EntryOption{kind: optStaleWhileRevalidate, d: d}
}

// WithStaleIfError keeps a stale entry for d after it went stale and serves
// it when the loader fails, instead of the loader's error.
func WithStaleIfError(d time.Duration) EntryOption {
	return EntryOption{kind: optStaleIfError, d: d}
}

// WithEarlyRefresh refreshes hot entries before they go stale, so they do
// not all miss at once at expiry. In the last d of an entry's freshness each
// hit refreshes it with a probability that rises from 0 to 1 as the entry
// nears staleness (probabilistic early expiration, "XFetch"); the hit that
// wins runs the loader, every other caller keeps getting the current value.
func WithEarlyRefresh(d time.Duration) EntryOption {
	return EntryOption{kind: optEarlyRefresh, d: d}
}

// WithJitter shortens each entry's TTL by a random fraction of up to f
// (0 <= f < 1), so entries written together do not expire together.
func WithJitter(f float64) EntryOption { return EntryOption{kind: optJitter, f: f} }

// with returns o with opts applied. It works on a copy, never through a
// pointer, so that the options' tags do not escape to the heap.
func (o entryOptions) with(opts []EntryOption) entryOptions {
	for _, op := range opts {
		switch op.kind {
		case optTTL:
			o.ttl = op.d
		case optTags:
			o.tags = addTags(o.tags, op.tags)
		case optNegativeTTL:
			o.negativeTTL = op.d
		case optStaleWhileRevalidate:
			o.swr = op.d
		case optStaleIfError:
			o.staleIfError = op.d
		case optEarlyRefresh:
			o.earlyRefresh = op.d
		case optJitter:
			o.jitter = op.f
		case optAdaptive:
			o.adaptiveMax = op.d
		case optSliding:
			o.slidingIdle, o.slidingMax = op.d, time.Duration(op.f)
		case optAlign:
			o.align, o.alignIn = op.d, int(op.f)
		}
	}
	return o
}

// detached returns a copy of o that shares nothing with it, for work that
// outlives the call. Its fields are listed one by one, tags last and
// cloned, on purpose: copying the struct whole would let escape analysis
// see the call's tags reach the heap, and every Get with WithTags would
// allocate. Keep it in step with entryOptions.
func (o *entryOptions) detached() *entryOptions {
	return &entryOptions{
		ttl:          o.ttl,
		negativeTTL:  o.negativeTTL,
		swr:          o.swr,
		staleIfError: o.staleIfError,
		earlyRefresh: o.earlyRefresh,
		jitter:       o.jitter,
		adaptiveMax:  o.adaptiveMax,
		slidingIdle:  o.slidingIdle,
		slidingMax:   o.slidingMax,
		align:        o.align,
		alignIn:      o.alignIn,
		tags:         slices.Clone(o.tags),
	}
}

// addTags returns the union of have and more, in order. It allocates only
// when both have tags.
func addTags(have, more []string) []string {
	if len(have) == 0 {
		return more
	}
	if len(more) == 0 {
		return have
	}
	out := make([]string, len(have), len(have)+len(more))
	copy(out, have)
	for _, t := range more {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func (o *entryOptions) validate() error {
	for _, d := range []time.Duration{o.ttl, o.negativeTTL, o.swr, o.staleIfError, o.earlyRefresh, o.align, o.adaptiveMax, o.slidingIdle, o.slidingMax} {
		if d < 0 {
			return errNegativeDuration
		}
	}
	if o.jitter < 0 || o.jitter >= 1 || math.IsNaN(o.jitter) {
		return errBadJitter
	}
	return nil
}

// deadline returns from + d in Unix nanoseconds, saturated at the largest
// time there is: a duration too long to add ("forever") must not wrap into
// the past.
func deadline(from int64, d time.Duration) int64 {
	if d > 0 && from > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return from + int64(d)
}

// staleWindow is how long past StaleAt an entry written with these options
// must be kept.
func (o *entryOptions) staleWindow() time.Duration { return max(o.swr, o.staleIfError) }
