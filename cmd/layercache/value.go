package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/layercache/layercache/codec/msgpack"
	"github.com/layercache/layercache/driver"
)

// The codec names the library writes into stored records: "json" and
// "msgpack" for values encoded by a codec, the others for []byte, string
// and time.Time values, which are stored as they are.
const (
	codecJSON    = "json"
	codecMsgpack = "msgpack"
	codecRaw     = "raw"
	codecString  = "string"
	codecTime    = "time"
)

// entryInfo is what the read verbs say about one stored entry.
type entryInfo struct {
	Layer    string          `json:"layer"`
	Codec    string          `json:"codec,omitempty"`
	Size     int             `json:"size"` // payload bytes
	TTL      *durationJSON   `json:"ttl,omitempty"`
	Stale    bool            `json:"stale,omitempty"`
	Negative bool            `json:"negative,omitempty"`
	Tags     []string        `json:"tags,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
}

// durationJSON is a duration that prints as Go writes it ("4m59s").
type durationJSON time.Duration

func (d durationJSON) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

func (d *durationJSON) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = durationJSON(v)
	return err
}

// describe fills an entryInfo from a stored entry. The value is decoded
// for display when its codec is known; otherwise valueErr says why not.
func describe(layer string, e *driver.Entry, now time.Time) (info entryInfo, valueErr error) {
	info = entryInfo{
		Layer:    layer,
		Codec:    e.Codec,
		Size:     len(e.Payload),
		Negative: e.Negative,
		Tags:     e.Tags,
		Stale:    e.StaleAt != 0 && e.StaleAt <= now.UnixNano(),
	}
	if ttl := e.TTL(now.UnixNano()); ttl > 0 {
		d := durationJSON(ttl.Round(time.Millisecond))
		info.TTL = &d
	}
	if e.Negative {
		return info, nil
	}
	v, err := displayValue(e.Codec, e.Payload)
	if err != nil {
		return info, err
	}
	info.Value, err = json.Marshal(v)
	return info, err
}

// displayValue decodes a payload into something encoding/json prints
// faithfully.
func displayValue(codec string, p []byte) (any, error) {
	switch codec {
	case codecJSON:
		if !json.Valid(p) {
			return nil, errors.New("the payload is not valid JSON")
		}
		return json.RawMessage(p), nil
	case codecString:
		return string(p), nil
	case codecRaw:
		if utf8.Valid(p) {
			return string(p), nil
		}
		return p, nil // base64 in JSON
	case codecTime:
		return decodeTime(p)
	case codecMsgpack:
		var v any
		if err := (msgpack.Codec{}).Unmarshal(p, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("values of codec %q cannot be shown; use --raw for the bytes", codec)
}

// decodeTime reads the library's stored form of a time.Time: its binary
// form, then the location's name, which is shown beside the instant.
func decodeTime(b []byte) (string, error) {
	n := 15
	if len(b) > 0 && b[0] == 2 {
		n = 16 // the form with seconds in the zone offset
	}
	if len(b) < n {
		return "", errors.New("truncated time value")
	}
	var t time.Time
	if err := t.UnmarshalBinary(b[:n]); err != nil {
		return "", err
	}
	nameLen, k := binary.Uvarint(b[n:])
	if k <= 0 || uint64(len(b)-n-k) != nameLen {
		return "", errors.New("bad time location")
	}
	return t.Format(time.RFC3339Nano) + " " + strconv.Quote(string(b[n+k:])), nil
}
