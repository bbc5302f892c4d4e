package layercache

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"
)

// WithAdaptiveTTL lets keys that are read often live longer: the entry's
// TTL (WithTTL) is what a key read once gets, and each doubling of how
// often this instance has read the key lately doubles it, up to max. Reads
// are counted in a small fixed-size sketch that forgets slowly, so a key
// that cools down gets short lifetimes again. It costs the hit path a
// counter increment (a plain fresh hit otherwise counts nothing).
func WithAdaptiveTTL(max time.Duration) EntryOption {
	return EntryOption{kind: optAdaptive, d: max}
}

// frequency is a count-min sketch of reads per key: four rows of 4096
// small counters, halved every 40960 reads so that old popularity fades.
type frequency struct {
	seed  maphash.Seed
	rows  [frequencyRows][frequencyWidth]atomic.Uint32
	reads atomic.Uint64
}

const (
	frequencyRows  = 4
	frequencyWidth = 1 << 12
	frequencyAge   = 10 * frequencyWidth
)

func newFrequency() *frequency { return &frequency{seed: maphash.MakeSeed()} }

// add counts a read of key.
func (f *frequency) add(key string) {
	h := maphash.String(f.seed, key)
	for r := range frequencyRows {
		f.rows[r][(h>>(16*r))&(frequencyWidth-1)].Add(1)
	}
	if f.reads.Add(1)%frequencyAge == 0 {
		f.age()
	}
}

// estimate returns how often key was read lately (an upper bound).
func (f *frequency) estimate(key string) uint32 {
	h := maphash.String(f.seed, key)
	least := uint32(1<<32 - 1)
	for r := range frequencyRows {
		least = min(least, f.rows[r][(h>>(16*r))&(frequencyWidth-1)].Load())
	}
	return least
}

// age halves every counter. Reads racing it may be halved or not.
func (f *frequency) age() {
	for r := range f.rows {
		for i := range f.rows[r] {
			c := &f.rows[r][i]
			c.Store(c.Load() / 2)
		}
	}
}

// reads returns the cache's read sketch, making it (64 KiB) the first time
// an adaptive TTL is used.
func (c *Cache) reads() *frequency {
	if f := c.frequency.Load(); f != nil {
		return f
	}
	c.frequency.CompareAndSwap(nil, newFrequency())
	return c.frequency.Load()
}

// adaptiveTTL is base doubled for each doubling of key's reads, up to max.
func (c *Cache) adaptiveTTL(key string, base, max time.Duration) time.Duration {
	reads := c.reads().estimate(key)
	if reads <= 1 || base <= 0 {
		return min(base, max)
	}
	shift := bits.Len32(reads) - 1
	if shift >= 62 || base > max>>shift {
		return max
	}
	return base << shift
}
