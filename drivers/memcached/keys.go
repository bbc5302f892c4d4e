package memcached

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

const (
	// maxKeyLen is memcached's limit on a key's length.
	maxKeyLen = 250
	// hashMark starts the part of a stored key that is a hash; cache keys
	// that start with it are hashed too, so the two forms never meet.
	hashMark = '#'
	// hashedLen is the length of a hashed key after the prefix: the mark
	// and the unpadded base64 of a SHA-256 sum.
	hashedLen = 1 + (sha256.Size*8+5)/6
	// maxPrefixLen leaves room after the prefix for the longest key the
	// layer makes, a tag's (see tagKey).
	maxPrefixLen = maxKeyLen - tagKeyLen
)

// storageKey returns the memcached key under which the cache key is stored:
// the prefix and the key itself when memcached accepts that, else the
// prefix and the key's hash (see the package documentation).
func (l *Layer) storageKey(key string) string {
	if key != "" && key[0] != hashMark && len(l.prefix)+len(key) <= maxKeyLen && legalKeyBytes(key) {
		return l.prefix + key
	}
	sum := sha256.Sum256([]byte(key))
	b := make([]byte, 0, len(l.prefix)+hashedLen)
	b = append(b, l.prefix...)
	b = append(b, hashMark)
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

// legalKeyBytes reports whether s holds no byte that memcached's text
// protocol refuses in a key: spaces, control characters and DEL.
func legalKeyBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkPrefix reports why p cannot start every stored key.
func checkPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("%d bytes, at most %d (memcached keys are at most %d bytes, and the layer's own keys take %d after the prefix)", len(p), maxPrefixLen, maxKeyLen, tagKeyLen)
	}
	if !legalKeyBytes(p) {
		return errors.New("contains a space, a control character or DEL, which memcached keys cannot")
	}
	return nil
}
