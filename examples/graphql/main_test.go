package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/layercache/layercache/internal/redistest"
)

// The demo must end by itself and show the cache at work: warm queries
// reach no store, private fields are per user, and a mutation's
// invalidation reaches exactly the fields tagged with its book.
func TestRun_DemoShowsCachedFields(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, "127.0.0.1:0", "", false); err != nil {
		t.Fatal(err)
	}
	steps := map[string]string{}
	for _, block := range strings.Split(out.String(), "# ")[1:] {
		title, rest, _ := strings.Cut(block, "\n")
		steps[title] = rest
	}
	want := map[string][]string{
		"books, warm": {`"rating":4.5`, "-> 0 store queries"},
		"book 1, cold: its reviews and rating are already cached": {"-> 1 store queries"},
		"me as alan: a private field is never shared":             {`"Reader alan"`, "-> 1 store queries"},
		"me as ada, warm": {`"Reader ada"`, "-> 0 store queries"},
		"books again: only the reviews and rating of book 2 are resolved again": {`"rating":4,"reviews":[{"stars":5},{"stars":3}]`, "-> 2 store queries"},
	}
	for title, parts := range want {
		got, ok := steps[title]
		if !ok {
			t.Errorf("no step %q", title)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(got, p) {
				t.Errorf("step %q lacks %s:\n%s", title, p, got)
			}
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

// Two instances over one Redis: the second finds in Redis what the first
// resolved, and resolves nothing for the first query it serves.
func TestRun_SecondInstanceUsesSharedLayer(t *testing.T) {
	srv := redistest.Start(t)
	config := filepath.Join(t.TempDir(), "cache.yaml")
	yaml := `namespace: bookshop
layers:
  - driver: memory
  - driver: redis
    url: ` + srv.URL() + `
bus:
  driver: redis
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var first, second bytes.Buffer
	if err := run(context.Background(), &first, "127.0.0.1:0", config, false); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), &second, "127.0.0.1:0", config, false); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(second.String(), "# books, cold\n")
	cold, _, _ := strings.Cut(rest, "# ")
	if !strings.Contains(cold, "-> 0 store queries") || !strings.Contains(cold, `"rating":4.5`) {
		t.Fatalf("the second instance's first query:\n%s\nfirst instance:\n%s", cold, first.String())
	}
}
