package main

import (
	"path/filepath"
	"testing"

	"github.com/layercache/layercache/internal/redistest"
)

func TestConfig_ThatDoesNotLoadFailsEveryAdminVerb(t *testing.T) {
	misspelt := writeConfig(t, "layers:\n  - driver: memory\n    max_size: 10\n  - driver: redis\n    url: redis://127.0.0.1:1/0\n    tiemout: 1s\n")
	badTop := writeConfig(t, "layers:\n  - driver: memory\ndegradation: { retry_after: soon }\n")
	unknownDriver := writeConfig(t, "layers:\n  - driver: mongo\n")
	for _, tc := range []struct {
		name   string
		config string
		want   []string
	}{
		{"missing file", filepath.Join(t.TempDir(), "absent.yaml"), []string{"absent.yaml"}},
		{"unknown key in a layer", misspelt, []string{"layers[1].tiemout", `did you mean "timeout"`}},
		{"invalid duration", badTop, []string{"degradation.retry_after"}},
		{"unknown driver", unknownDriver, []string{"layers[0]", `unknown driver "mongo"`}},
	} {
		for _, args := range [][]string{
			{"get", "k"}, {"inspect", "k"}, {"keys"}, {"del", "k"}, {"invalidate", "--tag", "t"}, {"stats"}, {"ping"},
		} {
			t.Run(tc.name+"/"+args[0], func(t *testing.T) {
				r := cli(t, append(args, "--config", tc.config)...)
				wantCode(t, r, exitFailure)
				wantIn(t, "stderr", r.stderr, tc.want...)
			})
		}
	}
}

func TestConfig_DefaultFileMissingSaysToGiveOne(t *testing.T) {
	r := cli(t, "ping")
	wantCode(t, r, exitFailure)
	wantIn(t, "stderr", r.stderr, "no layercache.yaml in the working directory", "--config FILE")
}

func TestConfig_DefaultFileAndEnvironmentOverridesAreUsed(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	// The file names a Redis nobody listens on; the environment moves the
	// layer to the real one, as it would for the application.
	path := filepath.Join(dir, "layercache.yaml")
	writeFile(t, path, "layers:\n  - driver: memory\n  - driver: redis\n    url: redis://127.0.0.1:1/0\n")
	r := runIn(t, dir, nil, "ping")
	wantCode(t, r, exitFailure)
	r = runIn(t, dir, []string{"LAYERCACHE_LAYERS__1__URL=" + srv.URL()}, "ping")
	wantCode(t, r, exitOK)
	wantRow(t, r.stdout, "layers[1] (redis)", "up")
}
