package gqlcache

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type shape interface{ isShape() }

type square struct {
	Side    int64
	Label   *string
	Corners []string
	Made    time.Time
}

func (*square) isShape() {}

type circle struct{ Radius float64 }

func (circle) isShape() {}

type triangle struct {
	Base int
	note string
}

func (triangle) isShape() {}

// viaCodec passes an entry through the cache's default codec, as a layer
// outside the process would.
func viaCodec(t *testing.T, e *entry) *entry {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back *entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

func TestEncode_ValuesComeBackWithTheirGoType(t *testing.T) {
	label := "red"
	values := []any{
		nil,
		(*square)(nil),
		&square{Side: 1<<62 + 1, Label: &label, Corners: []string{}, Made: time.Date(2024, 2, 29, 23, 59, 59, 999, time.FixedZone("X", -3*3600))},
		&square{Corners: nil, Made: time.Now()}, // a monotonic reading is not part of the value
		[]*square{{Side: 1}, nil},
		[]string(nil),
		[]string{},
		int64(-1 << 60),
		"text",
		[]shape{&square{Side: 2}, nil, circle{Radius: 0.25}},
		[]shape{},
		[]shape(nil),
		map[string]int{"a": 1, "b": 2},
	}
	for _, v := range values {
		var types typeRegistry
		e, err := encode(&types, v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		got, err := viaCodec(t, e).decode(&types)
		if err != nil {
			t.Fatalf("%#v: decode: %v", v, err)
		}
		if reflect.TypeOf(got) != reflect.TypeOf(v) {
			t.Fatalf("%#v came back as a %T", v, got)
		}
		if d := difference(reflect.ValueOf(v), reflect.ValueOf(got), 0); d != "" {
			t.Fatalf("%#v came back as %#v (differs at %s)", v, got, d)
		}
	}
}

func TestEncode_RefusesValuesThatWouldChange(t *testing.T) {
	type hidden struct {
		ID     string
		secret string
	}
	type skipped struct {
		ID   string
		Note string `json:"-"`
	}
	type holder struct{ Shape shape }
	cases := []struct {
		v    any
		want string
	}{
		{&hidden{ID: "1", secret: "s"}, "value.secret"},
		{skipped{ID: "1", Note: "n"}, "value.Note"},
		{holder{Shape: circle{1}}, "does not decode from its own JSON"}, // an interface field
		{map[string]any{"n": 1}, `value[key]`},                          // comes back as float64
		{[]shape{&square{}, triangle{note: "n"}}, "element 1"},
		{struct{ F func() }{F: func() {}}, "unsupported type"},
	}
	for _, tc := range cases {
		var types typeRegistry
		_, err := encode(&types, tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%#v: err = %v, want one mentioning %q", tc.v, err, tc.want)
		}
	}
	// Zero unexported fields lose nothing.
	var types typeRegistry
	if _, err := encode(&types, &hidden{ID: "1"}); err != nil {
		t.Errorf("zero unexported field: %v", err)
	}
}

func TestDecode_NeedsAKnownType(t *testing.T) {
	var writer, reader typeRegistry
	e, err := encode(&writer, []shape{circle{Radius: 1}})
	if err != nil {
		t.Fatal(err)
	}
	stored := viaCodec(t, e)
	if _, err := stored.decode(&reader); !errors.Is(err, errUnknownType) {
		t.Fatalf("err = %v, want errUnknownType", err)
	}
	reader.learn(reflect.TypeFor[[]shape]())
	if _, err := stored.decode(&reader); !errors.Is(err, errUnknownType) {
		t.Fatalf("element type unknown: err = %v, want errUnknownType", err)
	}
	reader.learn(reflect.TypeFor[circle]())
	v, err := stored.decode(&reader)
	if err != nil || !reflect.DeepEqual(v, []shape{circle{Radius: 1}}) {
		t.Fatalf("got %#v, %v", v, err)
	}
}

func TestDecode_RefusesEntriesThatDoNotFit(t *testing.T) {
	var types typeRegistry
	types.learn(reflect.TypeFor[*square]())
	types.learn(reflect.TypeFor[[]shape]())
	types.learn(reflect.TypeFor[circle]())
	sq := typeName(reflect.TypeFor[*square]())
	cases := map[string]*entry{
		"unknown field":        {Type: sq, Value: json.RawMessage(`{"Side":1,"Gone":2}`)},
		"wrong JSON type":      {Type: sq, Value: json.RawMessage(`{"Side":"one"}`)},
		"trailing data":        {Type: sq, Value: json.RawMessage(`{} {}`)},
		"no type, not null":    {Type: "", Value: json.RawMessage(`{}`)},
		"list of a non-list":   {Type: sq, List: true, Value: json.RawMessage(`[]`)},
		"element not a member": {Type: typeName(reflect.TypeFor[[]shape]()), List: true, Value: json.RawMessage(`[{"t":"` + sq + `x","v":{}}]`)},
	}
	for name, e := range cases {
		if v, err := e.decode(&types); err == nil {
			t.Errorf("%s: decoded %#v", name, v)
		}
	}
}

func TestTypeRegistry_NameOfTwoTypesIsRefused(t *testing.T) {
	var types typeRegistry
	first := func() reflect.Type { type local struct{ A int }; return reflect.TypeFor[local]() }()
	second := func() reflect.Type { type local struct{ B int }; return reflect.TypeFor[local]() }()
	if typeName(first) != typeName(second) {
		t.Skip("the two local types have distinct names here")
	}
	types.learn(first)
	types.learn(second)
	if _, err := types.lookup(typeName(first)); err == nil {
		t.Fatal("an ambiguous name was resolved")
	}
}

func FuzzEntryDecode(f *testing.F) {
	var types typeRegistry
	for _, v := range []any{&square{Side: 3, Corners: []string{"a"}}, []shape{circle{1}, nil, &square{}}, []shape(nil), "s", nil} {
		e, err := encode(&types, v)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e *entry
		if json.Unmarshal(data, &e) != nil || e == nil {
			return
		}
		v, err := e.decode(&types)
		if err != nil {
			return
		}
		// Whatever decodes is a value of the type the entry names.
		if e.Type != "" && typeName(reflect.TypeOf(v)) != e.Type {
			t.Fatalf("entry of %s decoded to a %T", e.Type, v)
		}
	})
}
