package httpcache

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

func TestRecord_RoundTrip(t *testing.T) {
	h := http.Header{
		"Content-Type": {"text/plain"},
		"Etag":         {`"abc"`},
		"Vary":         {"Accept-Encoding", "Accept-Language"},
		"X-Dropped":    {"x"},
		"Empty":        {},
	}
	keep := func(name string) bool { return name != "X-Dropped" }
	body := []byte("the body")
	b := encodeResponse(203, 1234567890, h, keep, body)
	resp, names, err := parseRecord(b)
	if err != nil || names != nil {
		t.Fatal(err, names)
	}
	if resp.status != 203 || resp.storedAt != 1234567890 || !bytes.Equal(resp.body, body) {
		t.Fatalf("%+v", resp)
	}
	if etag, lm, err := resp.validators(); etag != `"abc"` || lm != "" || err != nil {
		t.Fatalf("validators %q %q %v", etag, lm, err)
	}
	got := http.Header{}
	if err := resp.writeHeaders(got, nil, hitValue); err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Content-Type": {"text/plain"},
		"Etag":         {`"abc"`},
		"Vary":         {"Accept-Encoding", "Accept-Language"},
		"X-Cache":      {"HIT"},
	}
	if len(got) != len(want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	for k, v := range want {
		if !equalStrings(got[k], v) {
			t.Fatalf("%s = %v, want %v", k, got[k], v)
		}
	}
	// Appending to one header must not overwrite the next one's value.
	got["Content-Type"] = append(got["Content-Type"], "x")
	if got.Get("Etag") != `"abc"` {
		t.Fatal("appending to a header changed another")
	}
	// The same response always encodes the same.
	if !bytes.Equal(b, encodeResponse(203, 1234567890, h.Clone(), keep, body)) {
		t.Fatal("encoding is not deterministic")
	}

	v := encodeVariants([]string{"Accept-Encoding", "Accept-Language"})
	_, names, err = parseRecord(v)
	if err != nil || !equalStrings(names, []string{"Accept-Encoding", "Accept-Language"}) {
		t.Fatal(names, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzParseRecord feeds the record parser arbitrary bytes: it must refuse
// them or parse them into headers that can be written, never panic.
func FuzzParseRecord(f *testing.F) {
	f.Add(encodeResponse(200, 1, http.Header{"Content-Type": {"text/html"}, "Etag": {`"x"`}}, func(string) bool { return true }, []byte("<p>")))
	f.Add(encodeResponse(404, 0, nil, nil, nil))
	f.Add(encodeVariants([]string{"Accept-Encoding"}))
	f.Add([]byte{1, 'r', 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 1, 1, 'a', 1, 0, 'b'})
	many := http.Header{}
	for i := range 20 {
		many[fmt.Sprintf("X-H%02d", i)] = []string{"v", fmt.Sprint(i)}
	}
	f.Add(encodeResponse(200, 1, many, func(string) bool { return true }, []byte("body")))
	f.Add([]byte{1, 'v', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, names, err := parseRecord(b)
		if err != nil {
			return
		}
		if names != nil {
			for _, n := range names {
				if n == "" {
					t.Fatal("empty variant name accepted")
				}
			}
			return
		}
		h := http.Header{"Before": {"kept"}}
		werr := resp.writeHeaders(h, nil, hitValue)
		_, _, verr := resp.validators()
		if (werr == nil) != (verr == nil) {
			t.Fatalf("writeHeaders says %v, validators %v", werr, verr)
		}
		if werr != nil {
			if len(h) != 1 || h.Get("Before") != "kept" {
				t.Fatalf("a corrupt record changed the headers: %v", h)
			}
			return
		}
		n := 0
		for _, v := range h {
			n += len(v)
		}
		if n > resp.values+2 { // and Before, and X-Cache

			t.Fatalf("%d values written, %d claimed", n, resp.values)
		}
		if resp.status < 200 || resp.status > 599 {
			t.Fatalf("status %d accepted", resp.status)
		}
	})
}

func TestRecord_ManyHeadersRoundTrip(t *testing.T) {
	h := http.Header{}
	for i := range 30 {
		h[fmt.Sprintf("X-H%02d", i)] = []string{fmt.Sprint("a", i), fmt.Sprint("b", i)}
	}
	resp, _, err := parseRecord(encodeResponse(200, 1, h, func(string) bool { return true }, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := http.Header{}
	skipOdd := func(name string) bool { return name[len(name)-1]%2 == 1 }
	if err := resp.writeHeaders(got, skipOdd, missValue); err != nil {
		t.Fatal(err)
	}
	for name, want := range h {
		if skipOdd(name) {
			if got[name] != nil {
				t.Fatalf("%s not skipped", name)
			}
			continue
		}
		if !equalStrings(got[name], want) {
			t.Fatalf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got.Get("X-Cache") != "MISS" || len(got) != 16 {
		t.Fatalf("%d headers, X-Cache %q", len(got), got.Get("X-Cache"))
	}
}
