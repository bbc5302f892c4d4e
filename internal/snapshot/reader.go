package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/zeebo/xxh3"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// Read reads a whole snapshot from r and, only once all of it has been
// checked, calls fn with each entry in the order they were written. If the
// stream is refused, fn is never called and the error wraps [ErrCorrupt],
// [ErrVersion] or [ErrTooLarge]; an error reading r is returned wrapped as
// it is. If fn returns an error, Read stops and returns it.
//
// Entries are returned as stored, expired ones included: skipping them is
// the caller's choice. Each entry and its Payload belong to fn.
func Read(r io.Reader, limits Limits, fn func(key string, e *driver.Entry) error) error {
	lim, err := limits.withDefaults()
	if err != nil {
		return err
	}
	sr := &streamReader{r: bufio.NewReaderSize(r, 64<<10), sum: xxh3.New(), max: lim.MaxBytes}
	keys, entries, err := sr.readAll(lim)
	if err != nil {
		return err
	}
	for i, e := range entries {
		if err := fn(keys[i], e); err != nil {
			return err
		}
	}
	return nil
}

// streamReader reads a snapshot, summing and counting what it reads.
type streamReader struct {
	r   *bufio.Reader
	sum *xxh3.Hasher
	n   int64 // bytes read so far
	max int64 // bytes the stream may have

	held int64 // memory counted against the limit for decoded entries
}

// readAll checks the whole stream and returns its entries.
func (sr *streamReader) readAll(lim Limits) (keys []string, entries []*driver.Entry, err error) {
	head, err := sr.read(headerSize)
	if err != nil {
		return nil, nil, sr.fail("reading the header", err)
	}
	if string(head[:len(magic)]) != magic {
		return nil, nil, fmt.Errorf("%w: not a layercache snapshot", ErrCorrupt)
	}
	if v := head[len(magic)]; v != Version {
		return nil, nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrVersion, v, Version)
	}
	if f := head[len(magic)+1]; f != 0 {
		return nil, nil, fmt.Errorf("%w: unknown header flags %#x", ErrCorrupt, f)
	}
	for {
		frame, err := sr.readByte()
		if err != nil {
			return nil, nil, sr.fail("reading a frame", err)
		}
		if frame == frameEnd {
			break
		}
		if frame != frameRecord {
			return nil, nil, fmt.Errorf("%w: unexpected byte %#x at offset %d", ErrCorrupt, frame, sr.n-1)
		}
		if lim.MaxEntries > 0 && len(entries) == lim.MaxEntries {
			return nil, nil, fmt.Errorf("%w: more than %d entries (Limits.MaxEntries)", ErrTooLarge, lim.MaxEntries)
		}
		key, e, err := sr.record(len(entries))
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, key)
		entries = append(entries, e)
	}
	tail, err := sr.read(8)
	if err != nil {
		return nil, nil, sr.fail("reading the trailer", err)
	}
	// The checksum is not part of what it sums.
	want := sr.sum.Sum64()
	sum, err := sr.read(8)
	if err != nil {
		return nil, nil, sr.fail("reading the checksum", err)
	}
	if binary.LittleEndian.Uint64(sum) != want {
		return nil, nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if n := binary.LittleEndian.Uint64(tail); n != uint64(len(entries)) {
		return nil, nil, fmt.Errorf("%w: the trailer counts %d entries, the stream holds %d", ErrCorrupt, n, len(entries))
	}
	switch _, err := sr.r.ReadByte(); {
	case err == nil:
		return nil, nil, fmt.Errorf("%w: data after the end of the snapshot", ErrCorrupt)
	case !errors.Is(err, io.EOF):
		return nil, nil, fmt.Errorf("layercache/snapshot: reading: %w", err)
	}
	return keys, entries, nil
}

// record reads the i-th record after its frame byte.
func (sr *streamReader) record(i int) (string, *driver.Entry, error) {
	key, err := sr.field(i, "key")
	if err != nil {
		return "", nil, err
	}
	rec, err := sr.field(i, "entry")
	if err != nil {
		return "", nil, err
	}
	// What is left of the budget bounds a compressed payload before it is
	// expanded, so that a forged size cannot make Read allocate past it.
	e := new(driver.Entry)
	err = envelope.UnmarshalLimit(e, rec, int(min(sr.max-sr.held, math.MaxInt32)))
	switch {
	case errors.Is(err, envelope.ErrTooLarge):
		return "", nil, fmt.Errorf("%w: entry %d (key %q) takes more memory than Limits.MaxBytes leaves: %w", ErrTooLarge, i, key, err)
	case err != nil:
		return "", nil, fmt.Errorf("%w: entry %d (key %q): %w", ErrCorrupt, i, key, err)
	}
	// An uncompressed payload shares the record's memory: copy it so the
	// record can go and the count below is what is held.
	if e.Payload != nil {
		e.Payload = bytes.Clone(e.Payload)
	}
	sr.held += entryOverhead + int64(len(key)+len(e.Payload)+len(e.Codec))
	for _, t := range e.Tags {
		sr.held += tagOverhead + int64(len(t))
	}
	if sr.held > sr.max {
		return "", nil, fmt.Errorf("%w: the entries up to entry %d take more than %d bytes in memory (Limits.MaxBytes)", ErrTooLarge, i, sr.max)
	}
	return string(key), e, nil
}

// field reads a length-prefixed field of record i.
func (sr *streamReader) field(i int, what string) ([]byte, error) {
	n, err := sr.uvarint()
	if err != nil {
		return nil, sr.fail(fmt.Sprintf("reading the length of entry %d's %s", i, what), err)
	}
	if n > uint64(sr.max-sr.n) {
		return nil, fmt.Errorf("%w: entry %d's %s of %d bytes goes past %d bytes (Limits.MaxBytes)", ErrTooLarge, i, what, n, sr.max)
	}
	b, err := sr.read(int(n))
	if err != nil {
		return nil, sr.fail(fmt.Sprintf("reading entry %d's %s", i, what), err)
	}
	return b, nil
}

var (
	// errLimit is what the reads report when the stream goes past max.
	errLimit = errors.New("limit")
	// errVarint is a varint of more than 64 bits.
	errVarint = errors.New("varint overflows 64 bits")
)

// uvarint reads a varint as encoding/binary writes it.
func (sr *streamReader) uvarint() (uint64, error) {
	var v uint64
	for shift := 0; ; shift += 7 {
		c, err := sr.readByte()
		if err != nil {
			return 0, err
		}
		if shift == 63 && c > 1 {
			return 0, errVarint
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

// read reads exactly n bytes. Large fields are read in pieces, so that a
// length that promises more than the stream holds costs no more memory than
// the stream delivers.
func (sr *streamReader) read(n int) ([]byte, error) {
	if int64(n) > sr.max-sr.n {
		return nil, errLimit
	}
	const piece = 1 << 20
	b := make([]byte, 0, min(n, piece))
	for len(b) < n {
		k := min(n-len(b), piece)
		b = slices.Grow(b, k)
		m, err := io.ReadFull(sr.r, b[len(b):len(b)+k])
		_, _ = sr.sum.Write(b[len(b) : len(b)+m])
		b = b[:len(b)+m]
		sr.n += int64(m)
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (sr *streamReader) readByte() (byte, error) {
	if sr.n >= sr.max {
		return 0, errLimit
	}
	c, err := sr.r.ReadByte()
	if err != nil {
		return 0, err
	}
	sr.n++
	_, _ = sr.sum.Write([]byte{c})
	return c, nil
}

// fail turns an error met while doing what into Read's error.
func (sr *streamReader) fail(what string, err error) error {
	switch {
	case errors.Is(err, errLimit):
		return fmt.Errorf("%w: the stream is longer than %d bytes (Limits.MaxBytes)", ErrTooLarge, sr.max)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the stream ends at offset %d, %s", ErrCorrupt, sr.n, what)
	case errors.Is(err, errVarint):
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
	}
	return fmt.Errorf("layercache/snapshot: reading: %w", err)
}
