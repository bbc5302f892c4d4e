package layercache

import (
	"testing"
	"time"
)

// FuzzDecodeValue feeds arbitrary payloads to every decoder the core runs
// on bytes from outside the process: none may panic.
func FuzzDecodeValue(f *testing.F) {
	tb, _ := encodeTime(time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC))
	f.Add(tb, rawTime)
	f.Add([]byte(`{"a":[1,2]}`), "json")
	f.Add([]byte("x"), rawBytes)
	f.Fuzz(func(t *testing.T, payload []byte, codec string) {
		_, _ = decodeValue[time.Time](JSON, payload, codec)
		_, _ = decodeValue[[]byte](JSON, payload, codec)
		_, _ = decodeValue[string](JSON, payload, codec)
		_, _ = decodeValue[map[string][]int64](JSON, payload, codec)
		_, _ = decodeValue[struct{ A []int }](JSON, payload, codec)
	})
}

func TestDecodeValue_RefusesOtherCodecs(t *testing.T) {
	if _, err := decodeValue[int](JSON, []byte("1"), "msgpack"); err == nil {
		t.Fatal("a msgpack record was decoded as JSON")
	}
	if _, err := decodeValue[string](JSON, []byte("1"), "json"); err == nil {
		t.Fatal("a JSON record was taken for a raw string")
	}
}
