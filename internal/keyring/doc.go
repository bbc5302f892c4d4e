// Package keyring holds the secret keys of the drivers that authenticate or
// encrypt what they store: it parses keys from configuration text, names
// them by a public key id, signs with the first of a list of keys and
// verifies with any of them, so that keys can be rotated without a flag day.
//
// Key material never leaves the package in printable form: the drivers'
// key types print as [Redacted], and the signing state keeps each key only
// inside its HMAC instances, behind pointers that fmt does not follow.
//
// The package composes the standard library's HMAC-SHA256; it implements no
// primitive of its own.
package keyring
