package redis

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/layercache/layercache/internal/keyring"
)

// Secret is a password in a configuration. A set password prints as
// "[redacted]" with every fmt verb, in log/slog and when marshalled as text
// or JSON, so that a Config can be logged; an empty one prints empty, which
// tells that none is set. string(s) is the password itself.
type Secret string

// Format prints the redaction, whatever the verb.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprintf(f, fmt.FormatString(f, verb), s.String()) }

// String returns "[redacted]", or "" for no password.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return keyring.Redacted
}

// LogValue hides the password from log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText returns the redaction: a password is never written out.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// URL is the redis:// or rediss:// URL of a server, which may hold a
// password. It prints, logs and marshals with the password replaced by
// "xxxxx" (as [url.URL.Redacted] does), and as "[redacted]" altogether when
// it is not a well-formed redis, rediss or unix URL: a typo can move the
// password out of the place where a parser finds it. string(u) is the URL
// itself.
type URL string

// Format prints the redacted URL with the verb given.
func (u URL) Format(f fmt.State, verb rune) { fmt.Fprintf(f, fmt.FormatString(f, verb), u.String()) }

// String returns the URL with its password redacted.
func (u URL) String() string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(string(u))
	if err != nil || p.Opaque != "" || (p.User == nil && strings.Contains(string(u), "@")) {
		return keyring.Redacted
	}
	switch p.Scheme {
	case "redis", "rediss", "unix":
		return p.Redacted()
	}
	return keyring.Redacted
}

// LogValue hides the password from log/slog.
func (u URL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalText returns the redacted URL: a password is never written out.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }
