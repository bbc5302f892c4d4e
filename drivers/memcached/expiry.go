package memcached

import (
	"math"
	"time"
)

// maxRelative is the longest expiration memcached reads as a number of
// seconds from now (30 days); a larger number is an absolute Unix time.
const maxRelative = 30 * 24 * 60 * 60

// expiration returns memcached's expiration field for an entry that must
// live for life from now. own says that life is the entry's own remaining
// lifetime rather than the layer's TTL cap: memcached's clock advances in
// whole seconds, so an item may expire up to a second before the time it
// was given, and one more second keeps it at least until the entry expires
// (the layer hides it on reading after that). The result is at least 1:
// zero would mean "never expires".
func expiration(life time.Duration, own bool, now time.Time) int32 {
	secs := int64((life + time.Second - 1) / time.Second)
	if own {
		secs++
	}
	secs = max(secs, 1)
	if secs <= maxRelative {
		return int32(secs)
	}
	at := now.Unix() + secs
	if at > math.MaxInt32 {
		// The latest time memcached's 32-bit field can hold; keeping an
		// entry for less than asked is allowed.
		return math.MaxInt32
	}
	return int32(at)
}
