package layercache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// Codec turns values into bytes for layers outside the process and back.
// Implementations must be safe for concurrent use.
type Codec interface {
	// Name identifies the codec in stored records, so bytes written by a
	// cache with another codec are refused instead of misread.
	Name() string
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, a non-nil pointer.
	Unmarshal(data []byte, v any) error
}

// JSON is the default [Codec], on encoding/json. It keeps int64 exact when
// decoding into a typed destination, and nil slices apart from empty ones.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Values of these types bypass the codec: bytes and strings are stored as
// they are, and a time.Time keeps its location's name, which no codec's
// time encoding preserves.
const (
	rawBytes  = "raw"
	rawString = "string"
	rawTime   = "time"
)

var errCodecMismatch = errors.New("stored with another codec")

// encodeValue encodes v for a layer outside the process. It returns the
// payload and the name of the codec that produced it.
func encodeValue[V any](codec Codec, v V) ([]byte, string, error) {
	switch x := any(v).(type) {
	case []byte:
		return x, rawBytes, nil
	case string:
		return []byte(x), rawString, nil
	case time.Time:
		b, err := encodeTime(x)
		return b, rawTime, err
	}
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	return b, codec.Name(), nil
}

// decodeValue is the inverse of encodeValue.
func decodeValue[V any](codec Codec, payload []byte, codecName string) (V, error) {
	var v V
	if isRaw(codecName) && isInterface[V]() {
		// encodeValue chose the raw form by the value's dynamic type, as
		// with a string cached through Get[any]: decode by that form.
		x, err := decodeRaw(payload, codecName)
		if err != nil {
			return v, err
		}
		if v, ok := x.(V); ok {
			return v, nil
		}
		return v, fmt.Errorf("%w: a %T does not fit %T", errCodecMismatch, x, v)
	}
	switch p := any(&v).(type) {
	case *[]byte:
		if codecName != rawBytes {
			return v, fmt.Errorf("%w: %q, want %q", errCodecMismatch, codecName, rawBytes)
		}
		*p = payload // a layer's payload is the caller's to keep (driver.Entry)
		return v, nil
	case *string:
		if codecName != rawString {
			return v, fmt.Errorf("%w: %q, want %q", errCodecMismatch, codecName, rawString)
		}
		// The payload is ours (driver.Entry) and never written to again,
		// so the string can share its bytes instead of copying them.
		*p = unsafe.String(unsafe.SliceData(payload), len(payload))
		return v, nil
	case *time.Time:
		if codecName != rawTime {
			return v, fmt.Errorf("%w: %q, want %q", errCodecMismatch, codecName, rawTime)
		}
		t, err := decodeTime(payload)
		*p = t
		return v, err
	}
	if codecName != codec.Name() {
		return v, fmt.Errorf("%w: %q, want %q", errCodecMismatch, codecName, codec.Name())
	}
	return unmarshalWith[V](codec, payload)
}

// unmarshalWith decodes payload with codec. It is apart from decodeValue
// because the codec's interface makes its target escape to the heap, which
// would cost the raw forms above an allocation.
func unmarshalWith[V any](codec Codec, payload []byte) (V, error) {
	var v V
	err := codec.Unmarshal(payload, &v)
	return v, err
}

func isRaw(codecName string) bool {
	return codecName == rawBytes || codecName == rawString || codecName == rawTime
}

// decodeRaw decodes a raw form into its own type.
func decodeRaw(payload []byte, codecName string) (any, error) {
	switch codecName {
	case rawBytes:
		return payload, nil
	case rawString:
		return string(payload), nil
	default:
		return decodeTime(payload)
	}
}

// encodeTime stores the instant (time.Time's binary form, which keeps the
// zone offset) followed by the location's name.
func encodeTime(t time.Time) ([]byte, error) {
	b, err := t.MarshalBinary()
	if err != nil {
		return nil, err
	}
	name := t.Location().String()
	b = binary.AppendUvarint(b, uint64(len(name)))
	return append(b, name...), nil
}

func decodeTime(b []byte) (time.Time, error) {
	// time's binary form is 15 bytes, or 16 when it carries seconds of
	// offset (version 2); the version byte says which.
	if len(b) == 0 {
		return time.Time{}, errors.New("empty time")
	}
	n := 15
	if b[0] == 2 {
		n = 16
	}
	if len(b) < n {
		return time.Time{}, errors.New("truncated time")
	}
	var t time.Time
	if err := t.UnmarshalBinary(b[:n]); err != nil {
		return time.Time{}, err
	}
	nameLen, k := binary.Uvarint(b[n:])
	if k <= 0 || uint64(len(b)-n-k) != nameLen {
		return time.Time{}, errors.New("bad time location")
	}
	name := string(b[n+k:])
	switch name {
	case "UTC":
		return t.UTC(), nil
	case "Local":
		return t.Local(), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		// The zone database may lack the name here; the offset is exact.
		return t, nil
	}
	return t.In(loc), nil
}

// cloneValue returns a deep copy of v made by a round trip through the
// codec, for caches created WithClone.
func cloneValue[V any](codec Codec, v V) (V, error) {
	if b, ok := any(v).([]byte); ok {
		// Raw bytes are stored as they are, so the round trip below
		// would hand back the same array.
		c, _ := any(bytes.Clone(b)).(V)
		return c, nil
	}
	b, name, err := encodeValue(codec, v)
	if err != nil {
		return v, err
	}
	return decodeValue[V](codec, b, name)
}
