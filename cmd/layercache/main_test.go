package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// command is the layercache command built for the tests, which run it as
// users do.
var command string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "layercache-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	command = filepath.Join(dir, "layercache")
	args := []string{"build", "-o", command}
	if raceBuild {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the command: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// result is how one run of the command ended.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runIn runs the command in dir with args and the LAYERCACHE_* variables
// of env only (those of the test's own environment would change the
// configuration).
func runIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), command, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LAYERCACHE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running layercache %v: %v", args, err)
	}
	return r
}

// cli runs the command in a fresh directory.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	return runIn(t, t.TempDir(), nil, args...)
}

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "layercache.yaml")
	writeFile(t, path, yaml)
	return path
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit code %d, got %s", code, r)
	}
}

func wantIn(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rowOf returns the fields of the line of a table that starts with first.
func rowOf(t *testing.T, table, first string) []string {
	t.Helper()
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, first) {
			return strings.Fields(strings.TrimPrefix(line, first))
		}
	}
	t.Fatalf("no row %q in:\n%s", first, table)
	return nil
}

// wantRow checks the first cells of a table's row.
func wantRow(t *testing.T, table, first string, cells ...string) {
	t.Helper()
	got := rowOf(t, table, first)
	if len(got) < len(cells) || !slices.Equal(got[:len(cells)], cells) {
		t.Errorf("row %q = %q, want it to start with %q", first, got, cells)
	}
}
