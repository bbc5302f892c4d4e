package disk

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/layercache/layercache/internal/keyring"
)

// The defaults of [Options].
const (
	DefaultTTL           = 24 * time.Hour
	DefaultMaxSize       = 256 << 20
	DefaultMergeInterval = time.Minute

	// minMaxSize and minSegmentSize keep a layer able to hold at least a
	// handful of ordinary entries.
	minMaxSize     = 64 << 10
	minSegmentSize = 4 << 10
	// maxSegmentSize keeps offsets inside a segment within nutsdb's 32-bit
	// record sizes.
	maxSegmentSize = 1 << 30
	// defaultSegmentCap bounds the derived segment size: large segments
	// make compaction coarser and the space held by the active segment
	// larger, for no gain in speed.
	defaultSegmentCap = 64 << 20
	// encryptionKeySize is the size of an AES-256 key.
	encryptionKeySize = 32
	// maxTTL is the longest lifetime nutsdb's 32-bit TTL (seconds) holds.
	maxTTL = time.Duration(math.MaxUint32) * time.Second
)

// Options configure a disk [Layer]. Every field but Logger maps to the key of
// the same name in a "disk" layer's configuration block.
type Options struct {
	// Dir is the directory the layer keeps its files in. It is created if
	// missing and belongs to one layer at a time (see [New]). Required.
	Dir string `yaml:"dir"`

	// TTL caps how long an entry lives, counted from when it was written,
	// whatever its own ExpiresAt says; entries without an expiry live this
	// long. While the process runs the cap is exact; after a restart it is
	// enforced in whole seconds, rounded up, by nutsdb's own expiry.
	// Default: 24h (DefaultTTL). Negative, or more than about 136 years,
	// is an error.
	TTL time.Duration `yaml:"ttl"`

	// MaxSize bounds the bytes of live data the layer keeps: the sum over
	// its entries of key, encoded value and nutsdb's largest record header.
	// A write that would go beyond it first evicts the entries written
	// longest ago. The directory itself holds up to about 1.5 times this
	// between compactions, see the package documentation.
	// Default: 256 MiB (DefaultMaxSize). Less than 64 KiB is an error.
	MaxSize int64 `yaml:"max_size"`

	// SegmentSize is the size of each of nutsdb's data files. A record (key,
	// encoded value and header) larger than a segment cannot be stored:
	// such writes fail with [ErrValueTooLarge]. Every segment is created at
	// full size (sparse where the file system allows), so the directory
	// lists up to two segments more than the data it holds.
	// A segment size once used must not be lowered for the same directory;
	// if it is, the larger size of the existing files is kept.
	// Default: MaxSize/8, at most 64 MiB. Less than 4 KiB, more than 1 GiB
	// or more than MaxSize is an error.
	SegmentSize int64 `yaml:"segment_size"`

	// MergeInterval is how often the layer's background task forgets
	// expired entries and checks whether the directory needs compaction.
	// Compaction (nutsdb's merge) also starts at once whenever MaxSize/2
	// bytes have been written since the previous one.
	// Default: 1m (DefaultMergeInterval). Negative is an error.
	MergeInterval time.Duration `yaml:"merge_interval"`

	// CompressAbove compresses payloads longer than this many bytes with S2
	// before they are written. It pays off for text payloads (JSON, msgpack
	// with long strings) of a few KiB and up, both in disk space, so more
	// entries fit in MaxSize, and in I/O.
	// Default: 0, compression off. Negative is an error.
	CompressAbove int `yaml:"compress_above"`

	// EncryptionKeys turn on encryption: every record is written
	// encrypted and authenticated with AES-256-GCM under the first key
	// (more exactly, under a key derived from it for that record), and
	// carries that key's id, so that reads accept a record of any listed
	// key. A record that fails authentication (altered on disk, encrypted
	// with a key not listed, or written without encryption) is corrupt:
	// Get reports an error wrapping [ErrUnauthenticated] and
	// envelope.ErrCorrupt, the cache counts it and treats it as a miss, and
	// the record is removed. Values and tags are encrypted; the cache keys
	// (nutsdb's keys), record sizes and expiry times are not.
	//
	// Rotation: put a new key first and keep the old one after it; records
	// written from then on use the new key. Drop the old key once the
	// records it encrypted have expired (TTL) or been rewritten; records of
	// a dropped key are removed as they are found.
	//
	// Each key is 32 bytes; see [Key] for the text form. Turning
	// encryption on or off for a directory that holds entries makes those
	// entries misses. Default: none, records are stored in plain text.
	EncryptionKeys []Key `yaml:"encryption_keys"`

	// Logger receives warnings about data the layer had to discard when it
	// opened a damaged directory, and about failed compactions.
	// Default: slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// optionError names the option that failed validation, so that [New] and the
// configuration path can phrase it each in their own terms.
type optionError struct {
	key string // YAML key of the option
	msg string
}

func (o *Options) validate() *optionError {
	switch {
	case o.Dir == "":
		return &optionError{"dir", "is required"}
	case o.TTL < 0 || o.TTL > maxTTL:
		return &optionError{"ttl", fmt.Sprintf("must be between 0 and %v, got %v", maxTTL, o.TTL)}
	case o.MaxSize < 0 || (o.MaxSize > 0 && o.MaxSize < minMaxSize):
		return &optionError{"max_size", fmt.Sprintf("must be at least %d bytes, got %d", minMaxSize, o.MaxSize)}
	case o.MergeInterval < 0:
		return &optionError{"merge_interval", fmt.Sprintf("must not be negative, got %v", o.MergeInterval)}
	case o.CompressAbove < 0:
		return &optionError{"compress_above", fmt.Sprintf("must not be negative, got %d", o.CompressAbove)}
	}
	seen := make(map[keyring.ID]int, len(o.EncryptionKeys))
	for i, k := range o.EncryptionKeys {
		name := fmt.Sprintf("encryption_keys[%d]", i)
		if len(k) != encryptionKeySize {
			return &optionError{name, fmt.Sprintf("must be %d bytes (64 hex digits or 44 base64 characters), got %d bytes", encryptionKeySize, len(k))}
		}
		id := keyring.IDOf(k)
		if j, dup := seen[id]; dup {
			return &optionError{name, fmt.Sprintf("is the same key as encryption_keys[%d]", j)}
		}
		seen[id] = i
	}
	maxSize := o.MaxSize
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	if s := o.SegmentSize; s != 0 && (s < minSegmentSize || s > maxSegmentSize || s > maxSize) {
		return &optionError{"segment_size", fmt.Sprintf("must be between %d and min(1 GiB, max_size %d), got %d",
			minSegmentSize, maxSize, s)}
	}
	return nil
}

// withDefaults returns o with every zero field replaced by its default. It
// works on a copy: the caller's options are never modified.
func (o Options) withDefaults() Options {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = max(min(o.MaxSize/8, defaultSegmentCap), minSegmentSize)
	}
	if o.MergeInterval == 0 {
		o.MergeInterval = DefaultMergeInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
