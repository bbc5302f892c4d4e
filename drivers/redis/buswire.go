package redis

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/keyring"
)

// The wire formats of a bus message. Version 1, which a bus without
// signing keys sends:
//
//	byte     version (1)
//	byte     operation: a driver.Op, or 0 for a probe that receivers ignore
//	string   origin
//	uvarint  number of keys, then each key as a string
//	uvarint  number of tags, then each tag as a string
//
// Version 2, which a bus with signing keys sends and is the only one it
// accepts:
//
//	byte     version (2)
//	byte     operation, a driver.Op
//	int64    when it was sent, Unix milliseconds, little-endian
//	8 bytes  nonce, drawn at random for each message
//	string   origin, then keys and tags as in version 1
//	4 bytes  id of the signing key
//	32 bytes HMAC-SHA256 of everything before it, bound to the channel
//
// where a string is a uvarint length followed by that many bytes. Nothing
// may follow. A receiver drops a message of a version it does not know:
// the version byte exists so that a future format is refused, not misread.
const (
	busVersion       = 1
	busVersionSigned = 2
)

// busLabel separates bus signatures from those of other uses of a key.
const busLabel = "layercache/redis bus v1"

// signedHeader is the fixed part of a version 2 message.
const signedHeader = 2 + 8 + nonceSize

const nonceSize = 8

// probeMessage is what Subscribe publishes to check its rights.
var probeMessage = []byte{busVersion, 0, 0, 0, 0}

// errProbe is what decodeMessage returns for a probe.
var errProbe = errors.New("probe")

// signedMessage is a version 2 message once its signature is checked.
type signedMessage struct {
	driver.Message
	sentAt int64 // Unix milliseconds
	nonce  [nonceSize]byte
}

// encodeMessage encodes m in version 1.
func encodeMessage(m driver.Message) []byte {
	b := make([]byte, 0, encodedSize(m))
	b = append(b, busVersion, byte(m.Op))
	return appendBody(b, m)
}

// encodeSigned encodes m in version 2, signed by s for channel.
func encodeSigned(m driver.Message, sentAt int64, nonce [nonceSize]byte, s *keyring.Signer, channel string) []byte {
	b := make([]byte, 0, encodedSize(m)+8+nonceSize+keyring.TrailerSize)
	b = append(b, busVersionSigned, byte(m.Op))
	b = binary.LittleEndian.AppendUint64(b, uint64(sentAt))
	b = append(b, nonce[:]...)
	b = appendBody(b, m)
	return s.Append(b, channel)
}

func encodedSize(m driver.Message) int {
	n := 2 + binary.MaxVarintLen64*(3+len(m.Keys)+len(m.Tags)) + len(m.Origin)
	for _, k := range m.Keys {
		n += len(k)
	}
	for _, t := range m.Tags {
		n += len(t)
	}
	return n
}

func appendBody(b []byte, m driver.Message) []byte {
	b = appendString(b, m.Origin)
	b = binary.AppendUvarint(b, uint64(len(m.Keys)))
	for _, k := range m.Keys {
		b = appendString(b, k)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Tags)))
	for _, t := range m.Tags {
		b = appendString(b, t)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeMessage parses a version 1 message from untrusted bytes. Counts
// and lengths are checked against what is left before anything is
// allocated, so a hostile message cannot make it allocate more than its
// own size.
func decodeMessage(p string) (driver.Message, error) {
	if len(p) < 2 {
		return driver.Message{}, fmt.Errorf("%d bytes is too short", len(p))
	}
	if p[0] != busVersion {
		return driver.Message{}, fmt.Errorf("format version %d, want %d", p[0], busVersion)
	}
	m, err := decodeBody(driver.Op(p[1]), p[2:])
	if err != nil {
		return driver.Message{}, err
	}
	if m.Op == 0 {
		return driver.Message{}, errProbe
	}
	return m, nil
}

// decodeSigned parses a version 2 message whose trailer (key id and
// signature) has been checked and cut off.
func decodeSigned(p string) (signedMessage, error) {
	if len(p) < signedHeader {
		return signedMessage{}, fmt.Errorf("%d bytes is too short for a signed message", len(p))
	}
	if p[0] != busVersionSigned {
		return signedMessage{}, fmt.Errorf("format version %d, want %d", p[0], busVersionSigned)
	}
	if p[1] == 0 {
		return signedMessage{}, errors.New("signed message without an operation")
	}
	var sm signedMessage
	sm.sentAt = int64(binary.LittleEndian.Uint64([]byte(p[2:10])))
	copy(sm.nonce[:], p[10:signedHeader])
	m, err := decodeBody(driver.Op(p[1]), p[signedHeader:])
	if err != nil {
		return signedMessage{}, err
	}
	sm.Message = m
	return sm, nil
}

// decodeBody reads the origin, keys and tags, which must fill p exactly.
func decodeBody(op driver.Op, p string) (driver.Message, error) {
	m := driver.Message{Op: op}
	d := decoder{s: p}
	m.Origin = d.string()
	m.Keys = d.strings()
	m.Tags = d.strings()
	if d.err != nil {
		return driver.Message{}, d.err
	}
	if len(d.s) > 0 {
		return driver.Message{}, fmt.Errorf("%d bytes after the message", len(d.s))
	}
	return m, nil
}

// decoder reads the strings of a message; the first error sticks.
type decoder struct {
	s   string
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.err = errors.New("truncated or overlong varint")
	return 0
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.err = fmt.Errorf("string of %d bytes with %d left", n, len(d.s))
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	// Each string takes at least its length byte.
	if n > uint64(len(d.s)) {
		d.err = fmt.Errorf("%d strings with %d bytes left", n, len(d.s))
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return out
}
