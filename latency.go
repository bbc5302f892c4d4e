package layercache

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// latencyHistogram counts durations in buckets a quarter of a power of two
// wide (so a percentile read from it is within 19% of the truth), without
// locks: layers outside the process record every operation in it.
type latencyHistogram struct {
	buckets [latencyBuckets]atomic.Uint64
}

const latencyBuckets = 64 * 4

// latencyBucket returns the bucket of d: below 4ns, d itself; above, the
// position of its top bit and the two bits below it (buckets 4 to 7 stay
// empty).
func latencyBucket(d time.Duration) int {
	n := uint64(max(d, 0))
	if n < 4 {
		return int(n)
	}
	top := bits.Len64(n) - 1 // 2..62
	return top*4 + int(n>>(top-2))&3
}

// bucketUpper is the largest duration bucket i holds.
func bucketUpper(i int) time.Duration {
	if i < 8 {
		return time.Duration(min(i, 3))
	}
	top, sub := i/4, uint64(i%4)
	if top >= 61 { // would pass the largest Duration
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(((4|sub)+1)<<(top-2) - 1)
}

func (h *latencyHistogram) record(d time.Duration) { h.buckets[latencyBucket(d)].Add(1) }

// counts returns the buckets' counts, less those of base when given.
func (h *latencyHistogram) counts(base *[latencyBuckets]uint64) (out [latencyBuckets]uint64) {
	for i := range h.buckets {
		out[i] = h.buckets[i].Load()
		if base != nil {
			out[i] -= base[i]
		}
	}
	return out
}

// percentile returns the duration below which a fraction q of the counted
// operations ended (the upper bound of its bucket), 0 when none were
// counted.
func percentile(counts *[latencyBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var seen uint64
	for i, n := range counts {
		if seen += n; seen >= rank {
			return bucketUpper(i)
		}
	}
	return bucketUpper(latencyBuckets - 1)
}
