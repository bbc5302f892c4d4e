package config

import (
	"github.com/layercache/layercache/driver"
)

// Block is one driver's block of the configuration: a layer, the bus or
// the single-flight coordinator. The package does not know what keys a
// driver takes; the driver learns them by decoding the block into its own
// options struct with [Block.Decode], which is where unknown keys and
// wrong types are caught.
//
// A Block is not modified by decoding and may be decoded any number of
// times, from any number of goroutines.
type Block struct {
	// Driver is the name the block's "driver" key gives, such as "redis".
	Driver string

	raw  map[string]any // the block's keys but "driver"; values may be envValue
	path string         // "layers[1]", "bus", "singleflight"
	// namespace is the document's, for drivers that name shared keys.
	namespace string
	src       *source
}

// Path returns where the block is in the configuration: "layers[1]" for
// the second layer, "bus" or "singleflight".
func (b *Block) Path() string { return b.path }

// Namespace returns the document's namespace, which drivers use to keep
// their shared keys and channels apart from other caches'.
func (b *Block) Namespace() string { return b.namespace }

// Decode decodes the block into v, a pointer to a struct whose fields carry
// `yaml:"snake_case"` tags. The "driver" key is not passed on. Keys absent
// from the block leave their fields as they are, so a driver may fill in
// its defaults before calling Decode.
//
// Decoding is strict. It is an error, reported with the key's full path
// (such as `layers[1].tiemout: unknown key (did you mean "timeout"?)`), for
// a key to match no field, for a value to have the wrong type, and for a
// duration, size or count to be negative. Fields are filled thus:
//
//   - time.Duration: a Go duration string such as "100ms" or "1h30m"; the
//     number 0 is also accepted, other bare numbers are refused.
//   - any integer type: a whole number, or a size string with a unit
//     ("64MiB", "1GB", "512KiB"; KB is 1000 bytes, KiB 1024). Any integer
//     field thus takes a size; none takes a negative number.
//   - float32, float64: a number.
//   - bool: true or false.
//   - string: a string; a number must be quoted.
//   - slices: a list; from the environment, comma-separated items.
//   - structs and maps: a nested block of keys.
//   - types implementing [encoding.TextUnmarshaler]: a string.
//
// Fields without a yaml tag take no key: they are for values only code can
// supply, such as a client. Embedded structs share the block of the struct
// that embeds them, as do fields tagged `yaml:",inline"`.
//
// The error is an [*Error] or several joined; each names the file and line,
// or the environment variable, the value came from.
func (b *Block) Decode(v any) error {
	return b.src.decode(b.raw, v, b.path).err()
}

var _ driver.Config = (*Block)(nil)
