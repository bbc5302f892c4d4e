package envelope

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/layercache/layercache/driver"
)

func TestMarshal_RoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("layercache "), 10_000)
	cases := []struct {
		name string
		e    driver.Entry
		opt  Options
	}{
		{"value", driver.Entry{Payload: []byte(`{"id":42}`), Codec: "json", StaleAt: 10, ExpiresAt: 20}, Options{}},
		{"tags", driver.Entry{Payload: []byte("x"), Codec: "raw", Tags: []string{"users", "", "team:7"}}, Options{}},
		{"nil payload", driver.Entry{Payload: nil, Codec: "raw"}, Options{}},
		{"empty payload", driver.Entry{Payload: []byte{}, Codec: "raw"}, Options{}},
		{"negative", driver.Entry{Negative: true, ExpiresAt: 99}, Options{}},
		{"negative times", driver.Entry{Payload: []byte("x"), StaleAt: -5, ExpiresAt: -1}, Options{}},
		{"compressed", driver.Entry{Payload: big, Codec: "json"}, Options{CompressAbove: 1024}},
		{"below threshold", driver.Entry{Payload: big[:100], Codec: "json"}, Options{CompressAbove: 1024}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(&tc.e, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.e) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", *got, tc.e)
			}
			if (got.Payload == nil) != (tc.e.Payload == nil) {
				t.Fatalf("nil-ness of payload lost: got nil=%v", got.Payload == nil)
			}
		})
	}
}

func TestMarshal_CompressesAboveThreshold(t *testing.T) {
	e := &driver.Entry{Payload: bytes.Repeat([]byte("a"), 100_000)}
	plain, _ := Marshal(e, Options{})
	packed, _ := Marshal(e, Options{CompressAbove: 1000})
	if len(packed) >= len(plain)/10 {
		t.Fatalf("compressed record is %d bytes, plain %d", len(packed), len(plain))
	}
}

func TestUnmarshal_RejectsCorruptInput(t *testing.T) {
	good, err := Marshal(&driver.Entry{Payload: []byte(`{"name":"ada"}`), Codec: "json", Tags: []string{"t"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-trailerSize-3] ^= 0x01 // inside the payload: still valid JSON shape
	wrongVersion := bytes.Clone(good)
	wrongVersion[2] = 99
	cases := map[string][]byte{
		"empty":         nil,
		"foreign":       []byte(`{"name":"ada"}`),
		"truncated":     good[:len(good)-3],
		"flipped bit":   flipped,
		"wrong version": wrongVersion,
		"header only":   good[:headerSize],
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := Unmarshal(b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Unmarshal = %+v, %v; want ErrCorrupt", e, err)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, e := range []driver.Entry{
		{Payload: []byte("v"), Codec: "json", Tags: []string{"a", "b"}, StaleAt: 1, ExpiresAt: 2},
		{Negative: true},
		{Payload: bytes.Repeat([]byte("z"), 3000)},
	} {
		b, _ := Marshal(&e, Options{CompressAbove: 1000})
		f.Add(b)
	}
	f.Add([]byte("LC\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// Whatever decodes must encode back to a record that decodes equal.
		again, err := Marshal(e, Options{})
		if err != nil {
			t.Fatal(err)
		}
		e2, err := Unmarshal(again)
		if err != nil || !reflect.DeepEqual(e, e2) {
			t.Fatalf("re-encoding changed the entry: %+v vs %+v (%v)", e, e2, err)
		}
	})
}

func FuzzTags(f *testing.F) {
	b, _ := Marshal(&driver.Entry{Payload: []byte("v"), Tags: []string{"a", "bb"}}, Options{})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := Tags(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// Whatever a valid record says, Tags says the same.
		if e, err := Unmarshal(b); err == nil && !reflect.DeepEqual(tags, e.Tags) {
			t.Fatalf("Tags = %q, Unmarshal reads %q", tags, e.Tags)
		}
	})
}

func BenchmarkUnmarshal1MB(b *testing.B) {
	rec, _ := Marshal(&driver.Entry{Payload: bytes.Repeat([]byte("x"), 1<<20), Codec: "raw"}, Options{})
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(rec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnmarshalLimit_RefusesPayloadExpandingPastIt(t *testing.T) {
	e := &driver.Entry{Payload: bytes.Repeat([]byte("a"), 100_000)}
	packed, err := Marshal(e, Options{CompressAbove: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var got driver.Entry
	if err := UnmarshalLimit(&got, packed, 99_999); !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("UnmarshalLimit one byte short = %v, want ErrTooLarge (not ErrCorrupt)", err)
	}
	if err := UnmarshalLimit(&got, packed, 100_000); err != nil || !bytes.Equal(got.Payload, e.Payload) {
		t.Fatalf("UnmarshalLimit at the exact size = %v", err)
	}
	// An uncompressed payload is in b already: the limit is for expanding.
	plain, _ := Marshal(e, Options{})
	if err := UnmarshalLimit(&got, plain, 10); err != nil {
		t.Fatalf("UnmarshalLimit of an uncompressed record = %v", err)
	}
}
