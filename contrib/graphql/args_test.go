package gqlcache

import (
	"encoding/json"
	"testing"
)

type genre string

func TestAppendArgs_WritesWhatEncodingJSONWrites(t *testing.T) {
	s, n, f := "x", 7, false
	cases := []map[string]any{
		nil,
		{},
		{"id": "42"},
		{"b": 1, "a": "z", "c": true, "d": nil},
		{"text": `quote " and \ and <tag> & é and control` + "\x01"},
		{"first": &n, "none": (*int)(nil), "s": &s, "ns": (*string)(nil), "f": f},
		{"big": int64(1) << 62, "small": int32(-3), "float": 2.5, "enum": genre("FICTION")},
		{"input": map[string]any{"z": []int{1, 2}, "a": map[string]string{"k": "v"}}},
		{"a1": 1, "a2": 2, "a3": 3, "a4": 4, "a5": 5, "a6": 6, "a7": 7, "a8": 8, "a9": 9, "a10": 10},
	}
	for _, args := range cases {
		got, err := appendArgs(nil, args)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(args)
		if len(args) == 0 {
			want = []byte("{}")
		}
		if string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	if _, err := appendArgs(nil, map[string]any{"ch": make(chan int)}); err == nil {
		t.Error("a channel argument was encoded")
	}
}

func FuzzAppendArgs(f *testing.F) {
	f.Add("id", "42", int64(7), true)
	f.Add("q", "<\u2028\xff>", int64(-1), false)
	f.Fuzz(func(t *testing.T, k, s string, i int64, b bool) {
		args := map[string]any{"k": k, "s": s, "i": i, "b": b, "p": &s}
		got, err := appendArgs(nil, args)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(args)
		if string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}
