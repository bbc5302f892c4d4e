package redis

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/keyring"
)

// ErrUnauthenticated is wrapped, together with envelope.ErrCorrupt, by the
// error a read returns for a record that does not carry a valid signature
// of one of the layer's signing keys: unsigned, signed with another key,
// altered, or moved from another Redis key. The cache counts it as a
// layer error and treats it as a miss.
var ErrUnauthenticated = errors.New("layercache/redis: record not authenticated")

// A signed record is an envelope followed by a trailer:
//
//	envelope | "LS" 1 | key id (4 bytes) | HMAC-SHA256 (32 bytes)
//
// The HMAC covers the envelope, the marker and the key id, and is bound to
// the record's full Redis key, so a record copied under another key fails.
// The marker lets a layer without keys read signed records (it trusts
// Redis, so it has nothing to check) while keys are being rolled out.
var signedMarker = []byte{'L', 'S', 1}

// signedOverhead is what signing adds to a record.
const signedOverhead = 3 + keyring.TrailerSize

// valueLabel separates value signatures from those of other uses of a key.
const valueLabel = "layercache/redis value v1"

// LayerStats are a layer's own counters since it was created, for what the
// cache's per-layer counters do not tell apart.
type LayerStats struct {
	// Unauthenticated counts records refused because their signature did
	// not verify (see [Options.SigningKeys]). Each was also reported to the
	// cache as an error wrapping [ErrUnauthenticated].
	Unauthenticated uint64
}

// Stats returns the layer's counters.
func (l *Layer) Stats() LayerStats {
	return LayerStats{Unauthenticated: l.unauthenticated.Load()}
}

// sign appends the trailer to an encoded record.
func (l *Layer) sign(rec []byte, fullKey string) []byte {
	if l.signer == nil {
		return rec
	}
	return l.signer.Append(append(rec, signedMarker...), fullKey)
}

// unsign returns the envelope of a stored record: checked against the
// signing keys when the layer has them, and merely unwrapped when it has
// none and the record is signed.
func (l *Layer) unsign(key string, b []byte) ([]byte, error) {
	if l.signer == nil {
		if n := len(b) - signedOverhead; n >= 0 && bytes.Equal(b[n:n+len(signedMarker)], signedMarker) {
			return b[:n], nil
		}
		return b, nil
	}
	body, err := l.signer.Verify(b, l.prefix+key)
	if err == nil && !bytes.HasSuffix(body, signedMarker) {
		err = keyring.ErrUnsigned
	}
	if err != nil {
		l.unauthenticated.Add(1)
		return nil, fmt.Errorf("layercache/redis: key %q: %w: %w (%w)", key, ErrUnauthenticated, err, envelope.ErrCorrupt)
	}
	return body[:len(body)-len(signedMarker)], nil
}
