package prefix

import (
	"slices"
	"testing"
)

func TestAll(t *testing.T) {
	keys := []string{"a", "", "ключ", "a"}
	got := All("p:", keys)
	if want := []string{"p:a", "p:", "p:ключ", "p:a"}; !slices.Equal(got, want) {
		t.Fatalf("All = %q, want %q", got, want)
	}
	if got := All("", keys); &got[0] != &keys[0] {
		t.Error("All with no prefix copied the keys")
	}
	if got := All("p:", nil); len(got) != 0 {
		t.Errorf("All of no keys = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { All("p:", keys) }); n > 2 {
		t.Errorf("All allocated %v times for %d keys, want at most 2", n, len(keys))
	}
}
