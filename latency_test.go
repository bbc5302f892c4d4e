package layercache

import (
	"testing"
	"time"
)

func TestLatencyHistogram_BucketsHoldTheirDurations(t *testing.T) {
	prev := time.Duration(-1)
	for i := range latencyBuckets - 1 {
		up := bucketUpper(i)
		if up < prev {
			t.Fatalf("bucket %d ends at %v, before bucket %d (%v)", i, up, i-1, prev)
		}
		prev = up
	}
	for _, d := range []time.Duration{1, 2, 3, 5, 7, 100, 999, time.Microsecond, 1234567, time.Second, 3 * time.Hour} {
		i := latencyBucket(d)
		if d > bucketUpper(i) || (i > 0 && d <= bucketUpper(i-1)) {
			t.Errorf("%v went to bucket %d, which holds (%v, %v]", d, i, bucketUpper(i-1), bucketUpper(i))
		}
	}
}

func TestLatencyHistogram_Percentiles(t *testing.T) {
	var h latencyHistogram
	for range 90 {
		h.record(100 * time.Microsecond)
	}
	for range 10 {
		h.record(50 * time.Millisecond)
	}
	c := h.counts(nil)
	p50, p99 := percentile(&c, 0.5), percentile(&c, 0.99)
	if p50 < 100*time.Microsecond || p50 > 120*time.Microsecond {
		t.Errorf("p50 = %v, want about 100µs", p50)
	}
	if p99 < 50*time.Millisecond || p99 > 60*time.Millisecond {
		t.Errorf("p99 = %v, want about 50ms", p99)
	}
	base := c
	h.record(time.Second)
	c = h.counts(&base)
	if p := percentile(&c, 0.5); p < time.Second || p > 1200*time.Millisecond {
		t.Errorf("after a reset, p50 of one 1s operation = %v", p)
	}
}
