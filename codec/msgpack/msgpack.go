// Package msgpack is a MessagePack [layercache.Codec], on
// github.com/vmihailenco/msgpack/v5. It is smaller and faster than the
// default JSON codec for most values and keeps int64 and []byte exact.
//
//	c, err := layercache.New(layers, layercache.WithCodec(msgpack.Codec{}))
//
// Struct fields are named by their `json` tags when they have no `msgpack`
// tag, so types written for JSON need no second set of tags.
package msgpack

import (
	"bytes"

	vmsgpack "github.com/vmihailenco/msgpack/v5"

	"github.com/layercache/layercache"
)

// Codec encodes values as MessagePack. The zero value is ready to use and
// safe for concurrent use.
type Codec struct{}

// Name identifies the codec in stored records.
func (Codec) Name() string { return "msgpack" }

// Marshal encodes v.
func (Codec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := vmsgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes data into v, a non-nil pointer.
func (Codec) Unmarshal(data []byte, v any) error {
	dec := vmsgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	return dec.Decode(v)
}

var _ layercache.Codec = Codec{}
