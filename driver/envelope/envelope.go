// Package envelope is the byte format in which layers outside the process
// (Redis, disk) store a [driver.Entry]: a versioned header with the entry's
// freshness, expiry, tags and codec, the payload (compressed above a size
// threshold) and a checksum.
//
// The format is owned by layercache, not by any one driver, so that a value
// written by one driver version is read, or cleanly refused, by another.
// Corrupt, truncated or foreign bytes are an error from [Unmarshal], never a
// panic and never a silently wrong entry: a 64-bit XXH3 checksum over the
// whole record catches flipped bits that would otherwise decode into a
// different value. XXH3 rather than CRC-32C because on large values the
// checksum is most of what reading a record costs, and XXH3 hashes about
// twice as fast.
//
// Layout, version 1 (integers little-endian, varints as encoding/binary):
//
//	magic "LC" | version 1 | flags | stale_at int64 | expires_at int64 |
//	uvarint len + codec | uvarint count, then per tag uvarint len + tag |
//	payload ... | xxh3 uint64 (of everything before it)
package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/zeebo/xxh3"

	"github.com/layercache/layercache/driver"
)

// Version is the format version this package writes.
const Version = 1

// ChecksumSize is the length of the checksum that ends every record, so that
// a store can tell two records apart without reading them whole.
const ChecksumSize = 8

// MaxDecodedSize bounds the payload a compressed record may expand to, so a
// hostile record cannot make a reader allocate without limit.
const MaxDecodedSize = 1 << 30

const (
	magic0, magic1 = 'L', 'C'
	headerSize     = 4 + 8 + 8
	trailerSize    = ChecksumSize

	flagNegative   = 1 << 0
	flagNilPayload = 1 << 1
	flagS2         = 1 << 2
	knownFlags     = flagNegative | flagNilPayload | flagS2

	maxTags     = 1 << 16
	maxStrBytes = 1 << 16
)

// ErrCorrupt is wrapped by every error [Unmarshal] returns for bytes that are
// not a valid record.
var ErrCorrupt = errors.New("layercache/envelope: corrupt or foreign value")

// Options tune [Marshal].
type Options struct {
	// CompressAbove compresses payloads longer than this many bytes with S2.
	// Zero or negative disables compression.
	CompressAbove int
}

// Marshal encodes e.
func Marshal(e *driver.Entry, opt Options) ([]byte, error) {
	if len(e.Codec) >= maxStrBytes {
		return nil, fmt.Errorf("layercache/envelope: codec name of %d bytes", len(e.Codec))
	}
	if len(e.Tags) >= maxTags {
		return nil, fmt.Errorf("layercache/envelope: %d tags, at most %d", len(e.Tags), maxTags-1)
	}
	var flags byte
	if e.Negative {
		flags |= flagNegative
	}
	if e.Payload == nil {
		flags |= flagNilPayload
	}
	payload := e.Payload
	if opt.CompressAbove > 0 && len(payload) > opt.CompressAbove {
		payload = s2.Encode(nil, payload)
		flags |= flagS2
	}

	size := headerSize + binary.MaxVarintLen64 + len(e.Codec) + binary.MaxVarintLen64 + len(payload) + trailerSize
	for _, t := range e.Tags {
		if len(t) >= maxStrBytes {
			return nil, fmt.Errorf("layercache/envelope: tag of %d bytes", len(t))
		}
		size += binary.MaxVarintLen64 + len(t)
	}
	b := make([]byte, 0, size)
	b = append(b, magic0, magic1, Version, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.StaleAt))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.ExpiresAt))
	b = appendString(b, e.Codec)
	b = binary.AppendUvarint(b, uint64(len(e.Tags)))
	for _, t := range e.Tags {
		b = appendString(b, t)
	}
	b = append(b, payload...)
	b = binary.LittleEndian.AppendUint64(b, xxh3.Hash(b))
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Unmarshal decodes a record written by [Marshal]. The returned entry's
// Payload may alias b when it was stored uncompressed.
func Unmarshal(b []byte) (*driver.Entry, error) {
	e := new(driver.Entry)
	if err := UnmarshalTo(e, b); err != nil {
		return nil, err
	}
	return e, nil
}

// UnmarshalTo is [Unmarshal] into an entry the caller provides, so that a
// batch of records can be decoded into one allocation. e is overwritten;
// after an error its contents are undefined.
func UnmarshalTo(e *driver.Entry, b []byte) error {
	return UnmarshalLimit(e, b, MaxDecodedSize)
}

// ErrTooLarge is wrapped by the error [UnmarshalLimit] returns for a
// compressed payload that would expand beyond its limit.
var ErrTooLarge = errors.New("layercache/envelope: payload exceeds the limit")

// UnmarshalLimit is [UnmarshalTo] for a reader with a memory budget: a
// compressed payload that would expand to more than limit bytes (or
// MaxDecodedSize) is refused before anything is allocated for it, with an
// error wrapping ErrTooLarge.
func UnmarshalLimit(e *driver.Entry, b []byte, limit int) error {
	if len(b) < headerSize+trailerSize || b[0] != magic0 || b[1] != magic1 {
		return fmt.Errorf("%w: not a layercache record", ErrCorrupt)
	}
	if b[2] != Version {
		return fmt.Errorf("%w: format version %d, this build reads %d", ErrCorrupt, b[2], Version)
	}
	body, sum := b[:len(b)-trailerSize], binary.LittleEndian.Uint64(b[len(b)-trailerSize:])
	if xxh3.Hash(body) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	flags := body[3]
	if flags&^knownFlags != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	*e = driver.Entry{
		Negative:  flags&flagNegative != 0,
		StaleAt:   int64(binary.LittleEndian.Uint64(body[4:])),
		ExpiresAt: int64(binary.LittleEndian.Uint64(body[12:])),
	}
	r := reader{b: body[headerSize:]}
	e.Codec = r.codec()
	if n := r.uvarint(); n > 0 {
		if n >= maxTags {
			return fmt.Errorf("%w: %d tags", ErrCorrupt, n)
		}
		e.Tags = make([]string, 0, min(n, uint64(len(r.b))))
		for range n {
			e.Tags = append(e.Tags, r.string())
			if r.err != nil {
				break
			}
		}
	}
	if r.err != nil {
		return r.err
	}
	payload := r.b
	switch {
	case flags&flagS2 != 0:
		n, err := s2.DecodedLen(payload)
		switch {
		case err != nil || n > MaxDecodedSize:
			return fmt.Errorf("%w: bad compressed payload", ErrCorrupt)
		case n > limit:
			return fmt.Errorf("%w: the payload expands to %d bytes, over %d", ErrTooLarge, n, limit)
		}
		out, err := s2.Decode(make([]byte, n), payload)
		if err != nil {
			return fmt.Errorf("%w: bad compressed payload: %v", ErrCorrupt, err)
		}
		payload = out
	case flags&flagNilPayload != 0:
		if len(payload) != 0 {
			return fmt.Errorf("%w: nil payload with %d bytes", ErrCorrupt, len(payload))
		}
		payload = nil
	case len(payload) == 0:
		payload = []byte{}
	}
	e.Payload = payload
	return nil
}

// Tags returns the tags of a record without verifying its checksum or
// decoding its payload, for a store that indexes many records it has
// already checked by other means. It is an error wrapping [ErrCorrupt]
// when the header does not parse; use [Unmarshal] to read a record whose
// integrity matters.
func Tags(b []byte) ([]string, error) {
	if len(b) < headerSize+trailerSize || b[0] != magic0 || b[1] != magic1 {
		return nil, fmt.Errorf("%w: not a layercache record", ErrCorrupt)
	}
	if b[2] != Version {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrCorrupt, b[2], Version)
	}
	r := reader{b: b[headerSize : len(b)-trailerSize]}
	r.codec()
	n := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	if n == 0 {
		return nil, nil
	}
	if n >= maxTags || n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: %d tags", ErrCorrupt, n)
	}
	tags := make([]string, 0, n)
	for range n {
		tags = append(tags, r.string())
	}
	if r.err != nil {
		return nil, r.err
	}
	return tags, nil
}

// reader walks the variable part of a record, remembering the first error
// so the caller checks once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: truncated header", ErrCorrupt)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// field reads a length-prefixed field; it aliases the record.
func (r *reader) field() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) || n >= maxStrBytes {
		r.err = fmt.Errorf("%w: truncated header", ErrCorrupt)
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// codec reads the codec name, without allocating for the names layercache
// itself writes.
func (r *reader) codec() string {
	b := r.field()
	switch string(b) {
	case "":
		return ""
	case "json":
		return "json"
	case "msgpack":
		return "msgpack"
	case "raw":
		return "raw"
	case "string":
		return "string"
	case "time":
		return "time"
	}
	return string(b)
}

func (r *reader) string() string { return string(r.field()) }
