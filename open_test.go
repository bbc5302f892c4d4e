package layercache_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/config"
	_ "github.com/layercache/layercache/drivers/memory"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cache.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpen_MemoryExample(t *testing.T) {
	c, err := layercache.Open("examples/configs/memory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	v, err := layercache.Get(ctx, c, "k", func(context.Context) (string, error) { return "v", nil })
	if v != "v" || err != nil {
		t.Fatal(v, err)
	}
	s := c.Stats()
	if len(s.Layers) != 1 || s.Layers[0].Name != "memory" {
		t.Fatalf("stack %+v", s.Layers)
	}
	// The file's default negative TTL is in force.
	var loads int
	for range 2 {
		_, _ = layercache.Get(ctx, c, "gone", func(context.Context) (string, error) { loads++; return "", layercache.ErrNotFound })
	}
	if loads != 1 {
		t.Fatalf("negative_ttl from the file not applied: %d loads", loads)
	}
}

func TestOpen_MissingFile(t *testing.T) {
	_, err := layercache.Open(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestOpen_UnknownDriverSaysWhichImportIsMissing(t *testing.T) {
	for driverName, wants := range map[string][]string{
		"couchbase": {`"couchbase"`, "forgotten import", "layers[1]", "registered drivers: ", "memory"},
	} {
		path := writeConfig(t, "layers:\n  - driver: memory\n  - driver: "+driverName+"\n")
		_, err := layercache.Open(path)
		if err == nil {
			t.Fatal("unknown driver accepted")
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	}
}

func TestOpen_FailureHalfWayLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := writeConfig(t, "layers:\n  - driver: memory\n    ttl: 1m\n  - driver: memory\n    max_size: 10\n  - driver: nosuch\n")
	if _, err := layercache.Open(path); err == nil {
		t.Fatal("expected an error")
	}
}

func TestOpen_DriverRejectsItsBlock(t *testing.T) {
	path := writeConfig(t, "layers:\n  - driver: memory\n    max_sise: 10\n")
	_, err := layercache.Open(path)
	if err == nil || !strings.Contains(err.Error(), "layers[0].max_sise") || !strings.Contains(err.Error(), "max_size") {
		t.Fatalf("got %v", err)
	}
}

func TestOpen_EnvironmentOverridesFile(t *testing.T) {
	path := writeConfig(t, "layers:\n  - driver: memory\n    ttl: 1m\ndefaults:\n  ttl: 1h\n")
	t.Setenv("LAYERCACHE_DEFAULTS__TTL", "bogus")
	if _, err := layercache.Open(path); err == nil || !strings.Contains(err.Error(), "LAYERCACHE_DEFAULTS__TTL") {
		t.Fatalf("a bad override was not reported by name: %v", err)
	}
	t.Setenv("LAYERCACHE_DEFAULTS__TTL", "30s")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Defaults.TTL != 30*time.Second {
		t.Fatalf("override not applied: %v", cfg.Defaults.TTL)
	}
}
