package msgpack_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/layercache/layercache/codec/msgpack"
)

type record struct {
	ID    int64             `json:"id"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Blob  []byte            `json:"blob"`
}

func TestCodec_RoundTripsExactly(t *testing.T) {
	c := msgpack.Codec{}
	cases := []any{
		record{ID: math.MaxInt64, Tags: []string{"a"}, Attrs: map[string]string{"k": "v"}, Blob: []byte{0, 255}},
		record{ID: 1<<53 + 1},
		record{Tags: []string{}, Blob: []byte{}},
		[]int64{1<<53 + 1, -1},
		map[string]int{"x": 1},
	}
	for _, want := range cases {
		b, err := c.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(want))
		if err := c.Unmarshal(b, got.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Elem().Interface(), want) {
			t.Fatalf("round trip of %#v gave %#v", want, got.Elem().Interface())
		}
	}
}

func TestCodec_NilAndEmptySliceStayApart(t *testing.T) {
	c := msgpack.Codec{}
	for _, in := range [][]string{nil, {}} {
		b, _ := c.Marshal(in)
		var out []string
		if err := c.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if (out == nil) != (in == nil) {
			t.Fatalf("%#v came back as %#v", in, out)
		}
	}
}

func TestCodec_UsesJSONTags(t *testing.T) {
	b, _ := msgpack.Codec{}.Marshal(record{ID: 7})
	var m map[string]any
	if err := (msgpack.Codec{}).Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["id"]; !ok {
		t.Fatalf("field not named by its json tag: %v", m)
	}
}

func TestCodec_CorruptInputIsAnError(t *testing.T) {
	var r record
	if err := (msgpack.Codec{}).Unmarshal([]byte{0xc1, 0xff, 0x00}, &r); err == nil {
		t.Fatal("corrupt input decoded without error")
	}
}

func FuzzUnmarshal(f *testing.F) {
	b, _ := msgpack.Codec{}.Marshal(record{ID: 1, Tags: []string{"x"}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r record
		_ = msgpack.Codec{}.Unmarshal(data, &r) // must not panic
	})
}
