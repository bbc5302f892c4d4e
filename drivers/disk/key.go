package disk

import "github.com/layercache/layercache/internal/keyring"

// Key is a secret encryption key of a disk layer ([Options.EncryptionKeys]):
// 32 raw bytes, for AES-256. In a configuration file or an environment
// variable it is hex or base64 text (`openssl rand -hex 32` makes one); it
// prints as "[redacted]" everywhere.
type Key = keyring.Key

func rawKeys(keys []Key) [][]byte { return keyring.Raw(keys) }
