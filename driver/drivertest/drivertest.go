package drivertest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/layercache/layercache/driver"
)

// Options describe the layer under test to the suite.
type Options struct {
	// Corrupt writes bytes under key that are not a valid record, by the
	// backend's own means (a raw SET in Redis, a raw put on disk), in the
	// layer that open last returned for t: the suite calls it with the same
	// t it gave open. The key may or may not hold a valid entry before.
	// Nil for in-process layers (they hold Go values, so there is nothing to
	// corrupt); the suite then skips that test.
	Corrupt func(t *testing.T, key string)
}

// RunLayerTests runs the conformance suite against layers made by open (a
// fresh, empty layer each call; the suite closes it).
//
// open is called once per subtest with that subtest's t. The layers it
// returns must keep entries for at least a minute when the entry allows it
// (any TTL of their own is longer) and hold at least 1000 entries and
// 4 MiB without evicting. Layers that are [driver.InProcess] are given
// entries with Value set and Payload nil; all others are given Payload and
// Codec and must return them byte for byte.
func RunLayerTests(t *testing.T, open func(t *testing.T) driver.Layer, opts Options) {
	t.Helper()
	s := &suite{open: open, opts: opts}
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"RoundTripKeepsEveryField", s.testRoundTrip},
		{"InProcessHitReturnsStoredEntry", s.testInProcessIdentity},
		{"PayloadIsTheCallersToKeep", s.testPayloadOwned},
		{"MissReturnsNilNil", s.testMiss},
		{"OverwriteReplacesEntry", s.testOverwrite},
		{"DistinctKeysDoNotCollide", s.testDistinctKeys},
		{"EntryIsGoneOnceExpiresAtPasses", s.testExpiry},
		{"ExpiredEntryIsNeverReturned", s.testAlreadyExpired},
		{"SetOfExpiredEntryRemovesOldOne", s.testSetExpiredOverLive},
		{"OverwriteWithoutExpiryOutlivesOldDeadline", s.testOverwriteExtendsExpiry},
		{"OverwriteWithDeadlineExpires", s.testOverwriteShortensExpiry},
		{"LargeValueRoundTrips", s.testLarge},
		{"DeleteOfAbsentKeysIsNotAnError", s.testDeleteAbsent},
		{"DeleteRemovesSeveralKeys", s.testDeleteMany},
		{"ConcurrentAccessNeverTearsEntries", s.testConcurrent},
		{"CorruptValueIsErrorOrMiss", s.testCorrupt},
		{"DoneContextNeverHangs", s.testDoneContext},
		{"BatchGetterAgreesWithGet", s.testGetMany},
		{"BatchSetterAgreesWithSet", s.testSetMany},
		{"ClearerEmptiesLayer", s.testClear},
		{"ConditionalDeleterSparesOtherEntries", s.testDeleteIfHolds},
		{"AllTagsInvalidatorRemovesExactlyTheIntersection", s.testInvalidateAllTags},
		{"TagInvalidatorRemovesExactlyTaggedEntries", s.testInvalidateTags},
		{"PrefixInvalidatorRemovesExactlyMatchingKeys", s.testInvalidatePrefix},
		{"PrefixInvalidatorReachesEveryKeyOfALargePrefix", s.testInvalidatePrefixMany},
		{"PrefixInvalidatorOfEmptyPrefixClearsOrRefuses", s.testInvalidateEmptyPrefix},
		{"ExpirerMakesKeysStaleInPlace", s.testExpireKeys},
		{"ExpirerMakesTaggedEntriesStale", s.testExpireTags},
		{"ExpirerMakesPrefixedEntriesStale", s.testExpirePrefix},
		{"ExpirerKeepsExpiresAt", s.testExpiredStillExpires},
		{"PingerReportsHealthyLayer", s.testPing},
		{"NamerGivesName", s.testName},
		{"TimeouterGivesPositiveTimeout", s.testTimeout},
		{"AserRefusesUnknownTarget", s.testAs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, s.layer(t))
		})
	}
}

type suite struct {
	open func(t *testing.T) driver.Layer
	opts Options
}

// harness is one subtest's layer with the helpers that talk to it.
type harness struct {
	t      *testing.T
	l      driver.Layer
	inProc bool
	ctx    context.Context
}

func (s *suite) layer(t *testing.T) *harness {
	t.Helper()
	l := s.open(t)
	if l == nil {
		t.Fatal("open returned a nil layer")
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	_, inProc := l.(driver.InProcess)
	return &harness{t: t, l: l, inProc: inProc, ctx: context.Background()}
}

// entry returns an entry carrying data the way the layer expects it: as
// the decoded Value of an in-process layer, as Payload otherwise.
func (h *harness) entry(data []byte) *driver.Entry {
	e := &driver.Entry{}
	h.setData(e, data)
	return e
}

func (h *harness) setData(e *driver.Entry, data []byte) {
	if h.inProc {
		if data != nil {
			e.Value = data
		}
		return
	}
	e.Payload = data
	e.Codec = "drivertest"
}

func (h *harness) set(key string, e *driver.Entry) {
	h.t.Helper()
	if err := h.l.Set(h.ctx, key, e); err != nil {
		h.t.Fatalf("Set(%q): %v", key, err)
	}
}

func (h *harness) get(key string) *driver.Entry {
	h.t.Helper()
	e, err := h.l.Get(h.ctx, key)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

func (h *harness) del(keys ...string) {
	h.t.Helper()
	if err := h.l.Delete(h.ctx, keys...); err != nil {
		h.t.Fatalf("Delete(%q): %v", keys, err)
	}
}

// expect checks that key holds want, or misses when want is nil.
func (h *harness) expect(key string, want *driver.Entry) {
	h.t.Helper()
	if d := diff(want, h.get(key)); d != "" {
		h.t.Errorf("Get(%q): %s", key, d)
	}
}

// diff describes how got differs from want, or returns "" when they match.
// Tags compare by content: nil and empty are the same set of tags.
func diff(want, got *driver.Entry) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil:
		return fmt.Sprintf("got an entry %s, want a miss", describe(got))
	case got == nil:
		return fmt.Sprintf("got a miss, want the entry %s", describe(want))
	}
	var d []string
	if !reflect.DeepEqual(got.Value, want.Value) {
		d = append(d, fmt.Sprintf("Value = %s, want %s", short(got.Value), short(want.Value)))
	}
	if (got.Payload == nil) != (want.Payload == nil) || !bytes.Equal(got.Payload, want.Payload) {
		d = append(d, fmt.Sprintf("Payload = %s, want %s", short(got.Payload), short(want.Payload)))
	}
	if got.Codec != want.Codec {
		d = append(d, fmt.Sprintf("Codec = %q, want %q", got.Codec, want.Codec))
	}
	if got.StaleAt != want.StaleAt {
		d = append(d, fmt.Sprintf("StaleAt = %d, want %d", got.StaleAt, want.StaleAt))
	}
	if got.ExpiresAt != want.ExpiresAt {
		d = append(d, fmt.Sprintf("ExpiresAt = %d, want %d", got.ExpiresAt, want.ExpiresAt))
	}
	if !slices.Equal(got.Tags, want.Tags) {
		d = append(d, fmt.Sprintf("Tags = %q, want %q", got.Tags, want.Tags))
	}
	if got.Negative != want.Negative {
		d = append(d, fmt.Sprintf("Negative = %v, want %v", got.Negative, want.Negative))
	}
	return strings.Join(d, "; ")
}

func describe(e *driver.Entry) string {
	return fmt.Sprintf("{Value: %s, Payload: %s, Codec: %q, StaleAt: %d, ExpiresAt: %d, Tags: %q, Negative: %v}",
		short(e.Value), short(e.Payload), e.Codec, e.StaleAt, e.ExpiresAt, e.Tags, e.Negative)
}

// short formats a value or payload without printing megabytes of it.
func short(v any) string {
	b, ok := v.([]byte)
	if !ok {
		return fmt.Sprintf("%#v", v)
	}
	switch {
	case b == nil:
		return "[]byte(nil)"
	case len(b) <= 32:
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes %q...", len(b), b[:32])
}

// clone deep-copies e, so that a test can tell whether the layer modified
// the entry it was given.
func clone(e *driver.Entry) *driver.Entry {
	c := *e
	if b, ok := e.Value.([]byte); ok && b != nil {
		c.Value = bytes.Clone(b)
	}
	if e.Payload != nil {
		c.Payload = bytes.Clone(e.Payload)
	}
	if e.Tags != nil {
		c.Tags = slices.Clone(e.Tags)
	}
	return &c
}

// unixNano returns the time d from now in Unix nanoseconds, the unit of
// Entry.StaleAt and Entry.ExpiresAt.
func unixNano(d time.Duration) int64 {
	return time.Now().Add(d).UnixNano()
}
