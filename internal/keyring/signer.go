package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// MACSize is the length of a signature.
const MACSize = sha256.Size

// TrailerSize is what [Signer.Append] adds: the key id and the signature.
const TrailerSize = IDSize + MACSize

// MinSigningKey is the shortest signing key accepted: HMAC-SHA256 gains
// nothing from a longer one and loses strength with a shorter one.
const MinSigningKey = 32

// The reasons [Signer.Verify] refuses a message.
var (
	ErrUnsigned   = errors.New("not signed")
	ErrUnknownKey = errors.New("signed with a key that is not configured")
	ErrBadMAC     = errors.New("signature does not match")
)

// Signer signs with the first of its keys and verifies with any of them.
// It is safe for concurrent use.
//
// A signed message is the message followed by the signing key's id and
// HMAC-SHA256(key, label | uvarint len(context) | context | message | id).
// The label keeps signatures made for one purpose from being accepted for
// another under the same key; the context binds a message to where it may
// be found (a Redis key, a channel), so that it cannot be moved elsewhere.
type Signer struct {
	label string
	first *signingKey
	byID  map[ID]*signingKey
}

// signingKey holds one key, only inside its pooled HMAC instances.
type signingKey struct {
	id   ID
	macs sync.Pool // of *macState
}

// macState is an HMAC with scratch space, pooled so that signing and
// verifying allocate nothing.
type macState struct {
	h       hash.Hash
	buf     [binary.MaxVarintLen64 + MACSize]byte
	scratch []byte // strings are copied here: hash.Hash takes only bytes
}

// NewSigner returns a signer for keys, the first of which signs. name is
// the configuration key the keys came from, for errors; label separates
// the purposes keys are used for.
func NewSigner(name, label string, keys [][]byte) (*Signer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", name)
	}
	ids, err := CheckKeys(name, keys, MinSigningKey, false)
	if err != nil {
		return nil, err
	}
	s := &Signer{label: label, byID: make(map[ID]*signingKey, len(keys))}
	for i, k := range keys {
		k := append([]byte(nil), k...) // the caller's slice may be reused
		sk := &signingKey{id: ids[i]}
		sk.macs.New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
		s.byID[sk.id] = sk
		if i == 0 {
			s.first = sk
		}
	}
	return s, nil
}

// KeyID returns the id of the signing key.
func (s *Signer) KeyID() ID { return s.first.id }

// Append appends to msg the signing key's id and the signature of msg in
// context, and returns the extended slice.
func (s *Signer) Append(msg []byte, context string) []byte {
	k := s.first
	msg = append(msg, k.id[:]...)
	m := k.macs.Get().(*macState)
	msg = append(msg, s.sum(m, context, msg)...)
	k.macs.Put(m)
	return msg
}

// Verify checks a message signed by Append in context and returns the
// message without its trailer. The error is one of [ErrUnsigned],
// [ErrUnknownKey] and [ErrBadMAC].
func (s *Signer) Verify(signed []byte, context string) ([]byte, error) {
	if len(signed) < TrailerSize {
		return nil, ErrUnsigned
	}
	body := signed[:len(signed)-MACSize]
	var id ID
	copy(id[:], body[len(body)-IDSize:])
	k := s.byID[id]
	if k == nil {
		return nil, ErrUnknownKey
	}
	m := k.macs.Get().(*macState)
	ok := hmac.Equal(s.sum(m, context, body), signed[len(body):])
	k.macs.Put(m)
	if !ok {
		return nil, ErrBadMAC
	}
	return body[:len(body)-IDSize], nil
}

// sum returns the MAC of body in context, in m's scratch space.
func (s *Signer) sum(m *macState, context string, body []byte) []byte {
	m.scratch = append(m.scratch[:0], s.label...)
	m.scratch = binary.AppendUvarint(m.scratch, uint64(len(context)))
	m.scratch = append(m.scratch, context...)
	m.h.Reset()
	m.h.Write(m.scratch)
	m.h.Write(body)
	if cap(m.scratch) > 4<<10 {
		m.scratch = nil // an unusually long context is not kept in the pool
	}
	return m.h.Sum(m.buf[:0])
}
