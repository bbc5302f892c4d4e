package keyring

import (
	"fmt"
	"log/slog"
)

// Key is secret key material as the drivers' options hold it: the raw
// bytes. It prints as "[redacted]" with every fmt verb, in log/slog and when
// marshalled as text or JSON, so that options and configurations holding
// keys can be logged; errors about a key never quote it.
//
// In a configuration file or an environment variable a key is text: hex,
// or base64 in the standard or URL alphabet, padded or not. The prefixes
// "hex:" and "base64:" force one reading; without one, text made only of
// hex digits is read as hex. `openssl rand -hex 32` makes a key.
type Key []byte

// Format prints the redaction, whatever the verb.
func (Key) Format(f fmt.State, _ rune) { Format(f) }

// String returns "[redacted]".
func (Key) String() string { return Redacted }

// LogValue hides the key from log/slog.
func (Key) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText returns "[redacted]": a key is never written out.
func (Key) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalText reads the text form of a key (hex or base64).
func (k *Key) UnmarshalText(text []byte) error {
	b, err := Parse(string(text))
	if err != nil {
		return fmt.Errorf("layercache: invalid key: %w", err)
	}
	*k = b
	return nil
}

// UnmarshalMapstructure reads a key from a configuration file or the
// environment; its errors describe the text without showing it.
func (k *Key) UnmarshalMapstructure(v any) error {
	b, err := Decode(v)
	if err != nil {
		return err
	}
	*k = b
	return nil
}

// Raw returns the keys as byte slices.
func Raw(keys []Key) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}
