package redis

import "github.com/layercache/layercache/internal/keyring"

// Key is a secret signing key, of a layer ([Options.SigningKeys]) or a bus
// ([BusOptions.SigningKeys]): the raw key bytes, at least 32 of them. In a
// configuration file or an environment variable it is hex or base64 text
// (`openssl rand -hex 32` makes one); it prints as "[redacted]" everywhere.
type Key = keyring.Key

func rawKeys(keys []Key) [][]byte { return keyring.Raw(keys) }
