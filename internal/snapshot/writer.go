package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/xxh3"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// Writer writes a snapshot to an io.Writer: [Writer.Write] once per entry,
// then [Writer.Close], without which the stream has no trailer and every
// reader refuses it. A Writer is not safe for concurrent use.
type Writer struct {
	w     *bufio.Writer
	sum   *xxh3.Hasher
	count uint64
	// err is the first error of the underlying writer: the stream is
	// broken from there on and every later call returns it.
	err     error
	started bool
	closed  bool
	scratch []byte
}

// NewWriter returns a Writer that writes a snapshot to w. Nothing is
// written until the first Write or Close.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10), sum: xxh3.New()}
}

// errClosed is returned by Write and Close after Close.
var errClosed = errors.New("layercache/snapshot: writer is closed")

// Write adds the entry e under key. It writes what a layer outside the
// process stores: Payload and Codec, StaleAt, ExpiresAt, Tags and Negative.
// Value, the decoded value of an in-process layer, is not written: encode
// it into Payload first. An entry the envelope cannot hold (such as one
// with 65536 tags) is refused with an error and leaves the stream as it
// was; an error of the underlying writer ends the stream.
func (w *Writer) Write(key string, e *driver.Entry) error {
	if err := w.usable(); err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("layercache/snapshot: Write of key %q with a nil entry", key)
	}
	rec, err := envelope.Marshal(e, envelope.Options{CompressAbove: compressAbove})
	if err != nil {
		return fmt.Errorf("layercache/snapshot: key %q: %w", key, err)
	}
	w.start()
	b := append(w.scratch[:0], frameRecord)
	b = binary.AppendUvarint(b, uint64(len(key)))
	w.put(b)
	w.put([]byte(key))
	b = binary.AppendUvarint(b[:0], uint64(len(rec)))
	w.put(b)
	w.put(rec)
	w.scratch = b
	if w.err != nil {
		return fmt.Errorf("layercache/snapshot: %w", w.err)
	}
	w.count++
	return nil
}

// Count returns the number of entries written so far.
func (w *Writer) Count() int { return int(w.count) }

// Close writes the trailer (the number of entries and the checksum of the
// stream) and flushes the stream. It does not close the underlying writer.
// A stream whose Close failed is not a valid snapshot.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	w.start()
	w.closed = true
	b := append(w.scratch[:0], frameEnd)
	b = binary.LittleEndian.AppendUint64(b, w.count)
	w.put(b)
	b = binary.LittleEndian.AppendUint64(b[:0], w.sum.Sum64())
	if w.err == nil {
		_, w.err = w.w.Write(b) // the checksum is not part of what it sums
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	if w.err != nil {
		return fmt.Errorf("layercache/snapshot: %w", w.err)
	}
	return nil
}

func (w *Writer) usable() error {
	switch {
	case w.closed:
		return errClosed
	case w.err != nil:
		return fmt.Errorf("layercache/snapshot: %w", w.err)
	}
	return nil
}

// start writes the header once.
func (w *Writer) start() {
	if w.started {
		return
	}
	w.started = true
	w.put(append([]byte(magic), Version, 0))
}

// put writes b to the stream and the checksum.
func (w *Writer) put(b []byte) {
	if w.err != nil {
		return
	}
	_, _ = w.sum.Write(b)
	_, w.err = w.w.Write(b)
}
