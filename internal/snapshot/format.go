package snapshot

import (
	"errors"
	"fmt"
)

// Version is the format version this package writes and reads.
const Version = 1

// DefaultMaxBytes is the value of [Limits.MaxBytes] when it is zero.
const DefaultMaxBytes = 256 << 20

// entryOverhead is what Read counts per entry against MaxBytes beyond its
// bytes: the entry, its key and slice headers, and the slot in the list
// that holds them until the stream has been checked.
const entryOverhead = 192

// tagOverhead is what Read counts per tag beyond its bytes.
const tagOverhead = 16

const (
	magic       = "LCSNAP"
	headerSize  = len(magic) + 2
	frameRecord = 'R'
	frameEnd    = 'E'
	// compressAbove is the payload size above which Writer compresses
	// payloads with S2: snapshots are files, and large text values shrink
	// severalfold.
	compressAbove = 1024
)

// The errors Read returns for a stream it refuses wrap one of these.
var (
	// ErrCorrupt means the stream is not a whole, intact snapshot: not a
	// snapshot at all, truncated, altered, or followed by other data.
	ErrCorrupt = errors.New("layercache/snapshot: corrupt or truncated snapshot")
	// ErrVersion means the stream is a snapshot of a format version this
	// build cannot read.
	ErrVersion = errors.New("layercache/snapshot: unsupported snapshot version")
	// ErrTooLarge means the stream goes beyond the reader's [Limits].
	ErrTooLarge = errors.New("layercache/snapshot: snapshot exceeds the limits")
)

// Limits bound what [Read] accepts. The zero value is the defaults.
type Limits struct {
	// MaxBytes bounds both the length of the stream and the memory Read
	// holds for its decoded entries while it checks the stream: keys,
	// payloads, codec names and tags, plus about 200 bytes per entry.
	// A compressed payload is counted once decompressed, and refused
	// before it is decompressed when it would not fit.
	// Default: 256 MiB (DefaultMaxBytes). Negative is an error.
	MaxBytes int64

	// MaxEntries bounds the number of entries.
	// Default: 0, no bound but MaxBytes. Negative is an error.
	MaxEntries int
}

// withDefaults returns l with zero fields set to their defaults, or an
// error for impossible values.
func (l Limits) withDefaults() (Limits, error) {
	if l.MaxBytes < 0 {
		return l, fmt.Errorf("layercache/snapshot: Limits.MaxBytes %d is negative", l.MaxBytes)
	}
	if l.MaxEntries < 0 {
		return l, fmt.Errorf("layercache/snapshot: Limits.MaxEntries %d is negative", l.MaxEntries)
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l, nil
}
