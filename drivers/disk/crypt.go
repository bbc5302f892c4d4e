package disk

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/layercache/layercache/driver/envelope"
	"github.com/layercache/layercache/internal/keyring"
)

// ErrUnauthenticated is wrapped, together with envelope.ErrCorrupt, by the
// error a read of an encrypted layer returns for a record that fails
// authentication: altered, encrypted with a key the layer does not have,
// moved from another key, or not encrypted at all. The record is removed.
var ErrUnauthenticated = errors.New("layercache/disk: record not authenticated")

// An encrypted record, as stored in nutsdb:
//
//	"LE" | version 1 | key id (4) | salt (16) | nonce (12) | AES-256-GCM ciphertext of the envelope | tag (16)
//
// Each record is encrypted under its own key, derived from the configured
// key and the record's random salt with HKDF-SHA256, and the GCM nonce is
// random too. Random 96-bit nonces alone would bound a key to about 2^32
// records before a repeat becomes likely enough to matter, which a busy
// cache could write in days; with a fresh key per record there is no such
// bound. The additional data is the record's header and its nutsdb key, so
// that a record copied under another key fails authentication.
const (
	sealVersion  = 1
	saltSize     = 16
	nonceSize    = 12
	sealHeader   = 3 + keyring.IDSize + saltSize + nonceSize
	sealOverhead = sealHeader + 16 // and the GCM tag
	recordInfo   = "layercache/disk record v1"
)

var sealMagic = []byte{'L', 'E'}

// sealer encrypts records with the first of its keys and decrypts with any.
// Each key is held only as its HKDF pseudorandom key, behind a pointer, so
// that a layer printed with fmt shows addresses, never key material.
type sealer struct {
	first keyring.ID
	prks  map[keyring.ID]*[]byte
}

// newSealer returns a sealer for keys, which Options.validate has checked;
// nil when there are none.
func newSealer(keys []Key) (*sealer, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	s := &sealer{first: keyring.IDOf(keys[0]), prks: make(map[keyring.ID]*[]byte, len(keys))}
	for _, k := range keys {
		prk, err := hkdf.Extract(sha256.New, k, []byte("layercache/disk"))
		if err != nil {
			return nil, fmt.Errorf("layercache/disk: encryption_keys: %w", err)
		}
		s.prks[keyring.IDOf(k)] = &prk
	}
	return s, nil
}

// aead returns the cipher of one record.
func (s *sealer) aead(id keyring.ID, salt []byte) (cipher.AEAD, error) {
	prk := s.prks[id]
	if prk == nil {
		return nil, errUnknownKey
	}
	key, err := hkdf.Expand(sha256.New, *prk, recordInfo+string(salt), 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

var (
	errUnknownKey = errors.New("encrypted with a key that is not configured")
	errNotSealed  = errors.New("not an encrypted record")
	errOpen       = errors.New("authentication failed (altered, or encrypted for another key)")
)

// seal encrypts the envelope plain, stored under storeKey.
func (s *sealer) seal(storeKey, plain []byte) ([]byte, error) {
	out := make([]byte, sealHeader, sealOverhead+len(plain))
	copy(out, sealMagic)
	out[2] = sealVersion
	copy(out[3:], s.first[:])
	if _, err := rand.Read(out[3+keyring.IDSize : sealHeader]); err != nil {
		return nil, err
	}
	salt := out[3+keyring.IDSize : 3+keyring.IDSize+saltSize]
	nonce := out[sealHeader-nonceSize : sealHeader]
	a, err := s.aead(s.first, salt)
	if err != nil {
		return nil, err
	}
	return a.Seal(out, nonce, plain, additional(out[:sealHeader], storeKey)), nil
}

// open decrypts a record stored under storeKey and returns its envelope.
func (s *sealer) open(storeKey, rec []byte) ([]byte, error) {
	if len(rec) < sealOverhead || !bytes.HasPrefix(rec, sealMagic) || rec[2] != sealVersion {
		return nil, errNotSealed
	}
	var id keyring.ID
	copy(id[:], rec[3:])
	a, err := s.aead(id, rec[3+keyring.IDSize:3+keyring.IDSize+saltSize])
	if err != nil {
		return nil, err
	}
	plain, err := a.Open(nil, rec[sealHeader-nonceSize:sealHeader], rec[sealHeader:], additional(rec[:sealHeader], storeKey))
	if err != nil {
		return nil, errOpen
	}
	return plain, nil
}

func additional(header, storeKey []byte) []byte {
	ad := make([]byte, 0, len(header)+len(storeKey))
	return append(append(ad, header...), storeKey...)
}

// unauthenticated is the error of a record that does not decrypt.
func unauthenticated(key string, err error) error {
	return fmt.Errorf("layercache/disk: get %q: %w: %w (%w)", key, ErrUnauthenticated, err, envelope.ErrCorrupt)
}
