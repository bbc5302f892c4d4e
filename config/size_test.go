package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"0", 0},
		{"10000", 10000},
		{"+5", 5},
		{"512B", 512},
		{"1KB", 1000},
		{"1kb", 1000},
		{"1GB", 1_000_000_000},
		{"64MiB", 64 << 20},
		{"64 MiB", 64 << 20},
		{" 512KiB ", 512 << 10},
		{"512kib", 512 << 10},
		{"1.5GiB", 3 << 29},
		{"0.5KB", 500},
		{"2TiB", 2 << 40},
		{"1PB", 1e15},
		{"18446744073709551615", 1<<64 - 1},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSize_Errors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "expected a whole number or a size"},
		{"lots", `got "lots"`},
		{"MiB", `got "MiB"`},
		{".5KB", "expected a whole number or a size"},
		{"5.KB", "expected a whole number or a size"},
		{"1.2.3", "expected a whole number or a size"},
		{"64M", `unknown unit "M" in "64M"`},
		{"1 kilobyte", `unknown unit "kilobyte"`},
		{"5%", "expected a whole number or a size"},
		{"-1", "must not be negative, got -1"},
		{"-64MiB", "must not be negative"},
		{"1.5B", "not a whole number of bytes"},
		{"0.0001KB", "not a whole number of bytes"},
		{"18446744073709551616", "is too large"},
		{"16384PiB", "is too large"},
	} {
		_, err := parseSize(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseSize(%q) error = %v, want one containing %q", tc.in, err, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"timeout", "ttl", "url", "addrs", "retry_after", "retry_count", "password", "max_size"}
	for _, tc := range []struct {
		key, want string
	}{
		{"tiemout", "timeout"},
		{"timout", "timeout"},
		{"TTL", "ttl"},
		{"urll", "url"},
		{"adrs", "addrs"},
		{"pasword", "password"},
		{"max-size", "max_size"},
		{"maxsize", "max_size"},
		{"retry_afer", "retry_after"},
		{"pass", "password"}, // the one key it starts
		{"retry", ""},        // starts two keys
		{"x", ""},
		{"tt", "ttl"},
		{"ab", ""}, // too short for a prefix, too far for an edit
		{"colour", ""},
	} {
		got, ok := suggest(tc.key, known)
		if ok != (tc.want != "") || got != tc.want && ok {
			t.Errorf("suggest(%q) = %q, %v; want %q", tc.key, got, ok, tc.want)
		}
	}
}

func TestLevenshtein(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "abc", 0},
		{"kitten", "sitting", 3},
		{"tiemout", "timeout", 2},
		{"größe", "grösse", 2},
	} {
		if got := levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := levenshtein(tc.b, tc.a); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}
