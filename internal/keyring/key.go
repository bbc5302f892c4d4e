package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Redacted is what a key prints as, whatever the verb or encoder.
const Redacted = "[redacted]"

// IDSize is the length of a key id.
const IDSize = 4

// ID is the public name of a key, stored next to what the key signed or
// encrypted so that a reader picks the right key at once. It is derived
// from the key with HMAC-SHA256 and reveals nothing useful about it.
type ID [IDSize]byte

// IDOf returns the id of key.
func IDOf(key []byte) ID {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("layercache key id v1"))
	var id ID
	copy(id[:], m.Sum(nil))
	return id
}

// String returns the id in hex; it is public.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Parse decodes the text form of a key: hex, or base64 in the standard or
// URL alphabet, padded or not. The prefixes "hex:" and "base64:" force one
// reading; without a prefix, text made only of an even number of hex digits
// is hex and anything else is base64. Surrounding spaces are ignored.
//
// Errors describe the text by its length only: a key that is almost right
// is still a secret.
func Parse(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	switch {
	case s == "":
		return nil, errors.New("empty key")
	case strings.HasPrefix(s, "hex:"):
		return parseHex(s[len("hex:"):])
	case strings.HasPrefix(s, "base64:"):
		return parseBase64(s[len("base64:"):])
	case len(s)%2 == 0 && isHex(s):
		return parseHex(s)
	}
	return parseBase64(s)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func parseHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%d characters of text that are not hex", len(s))
	}
	return b, nil
}

func parseBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%d characters of text that are neither hex nor base64", len(s))
}

// Decode is the UnmarshalMapstructure of the drivers' key types: it takes
// the string a configuration file or environment variable gives and
// returns the key. Anything but a string is refused without being shown.
func Decode(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("a key must be a string of hex or base64 (quote it), got a %T", v)
	}
	b, err := Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid key: %w", err)
	}
	return b, nil
}

// Format writes the redaction for every fmt verb.
func Format(f io.Writer) { _, _ = io.WriteString(f, Redacted) }

// CheckKeys checks a list of keys given under the configuration key name:
// each must be at least minLen bytes long (exactly minLen when exact), and
// no two may share an id (the same key twice, most likely). It returns the
// keys' ids in order.
func CheckKeys(name string, keys [][]byte, minLen int, exact bool) ([]ID, error) {
	var errs []error
	ids := make([]ID, len(keys))
	seen := make(map[ID]int, len(keys))
	for i, k := range keys {
		switch {
		case exact && len(k) != minLen:
			errs = append(errs, fmt.Errorf("%s[%d]: key of %d bytes, want exactly %d (%d hex digits or %d base64 characters)",
				name, i, len(k), minLen, 2*minLen, base64.StdEncoding.EncodedLen(minLen)))
			continue
		case len(k) < minLen:
			errs = append(errs, fmt.Errorf("%s[%d]: key of %d bytes, want at least %d (%d hex digits or %d base64 characters)",
				name, i, len(k), minLen, 2*minLen, base64.StdEncoding.EncodedLen(minLen)))
			continue
		}
		ids[i] = IDOf(k)
		if j, dup := seen[ids[i]]; dup {
			errs = append(errs, fmt.Errorf("%s[%d]: same key as %s[%d]", name, i, name, j))
		}
		seen[ids[i]] = i
	}
	return ids, errors.Join(errs...)
}
