package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/layercache/layercache/internal/redistest"
)

func TestDemo_RunsOnMemoryAndDiskWithoutRedis(t *testing.T) {
	dir := t.TempDir()
	r := cli(t, "demo", "--dir", dir)
	wantCode(t, r, exitOK)
	wantIn(t, "demo", r.stdout,
		"stack: memory + disk",
		"cold miss (50 ms loader)", "loader ran 1 time\n",
		"warm hit from memory", "loader runs in all: 1\n",
		"stampede: 100 callers", "loader ran 1 time; all 100 callers served",
		"stale-while-revalidate", "19 served the stale value at once", "1 waited for the refresh",
		"second instance, after a Delete on the first", "not shown",
		"close the stack, open it again", "served by disk", "loader not run",
	)
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		t.Errorf("the disk layer left nothing in --dir %s (%v)", dir, err)
	}
}

func TestDemo_WithRedisShowsASecondInstanceSeeingAnInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	path := writeConfig(t, fmt.Sprintf(`namespace: demo
layers:
  - driver: memory
  - driver: redis
    url: %s
  - driver: disk
    dir: %s
bus: { driver: redis }
`, srv.URL(), t.TempDir()))
	r := cli(t, "demo", "--config", path)
	wantCode(t, r, exitOK)
	wantIn(t, "demo", r.stdout,
		"[memory redis disk]",
		"loader ran 1 time; all 100 callers served",
		"its copy was gone",
		"served by redis", "loader not run",
	)
	// The demo cleans up after itself.
	if n := srv.Do(t, "DBSIZE"); n != int64(0) {
		t.Errorf("the demo left %v keys in Redis", n)
	}
}

func TestBench_ReportsTheScenariosAsJSON(t *testing.T) {
	srv := redistest.Start(t)
	r := cli(t, "bench", "--redis", srv.URL(), "--format", "json", "--scenario", "stampede,singleflight,invalidation")
	wantCode(t, r, exitOK)
	wantIn(t, "progress", r.stderr, "scenario 1 of 3: stampede", "scenario 3 of 3: invalidation", "done in")
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("bench --format json: %v\n%s", err, r.stdout)
	}
	facts := map[string]string{}
	for _, f := range rep.Machine {
		facts[f.Name] = f.Value
	}
	if !strings.Contains(facts["CPU"], "CPUs") || !strings.HasPrefix(facts["Go"], "go") || !strings.Contains(facts["Redis"], "given with --redis") {
		t.Errorf("machine description %v", rep.Machine)
	}
	if len(rep.Scenarios) != 3 {
		t.Fatalf("want 3 scenarios, got %d", len(rep.Scenarios))
	}
	// The loader-run counts are what these scenarios claim.
	loads := func(sc *table, stack string, col int) string {
		for _, row := range sc.Rows {
			if row[0] == stack {
				return row[col]
			}
		}
		t.Fatalf("%s: no row %q in %v", sc.Name, stack, sc.Rows)
		return ""
	}
	stampede := rep.Scenarios[0]
	for stack, want := range map[string]string{"no cache": "375", "memory": "5", "memory + Redis": "5"} {
		if got := loads(stampede, stack, 2); got != want {
			t.Errorf("stampede, %s: %s loader runs, want %s", stack, got, want)
		}
	}
	sf := rep.Scenarios[1]
	if got := loads(sf, "2 processes + Redis coordinator", 2); got != "5" {
		t.Errorf("single-flight with a coordinator: %s loads over 5 rounds, want 5", got)
	}
	if got := loads(sf, "2 processes, no coordinator", 2); got != "10" {
		t.Errorf("single-flight without a coordinator: %s loads over 5 rounds, want 10 (one per process)", got)
	}
	inv := rep.Scenarios[2]
	if len(inv.Rows) != 1 || inv.Rows[0][0] != strconv.Itoa(invalidationSamples) {
		t.Errorf("invalidation rows %v", inv.Rows)
	}
	// The run's keys are removed from a Redis the bench did not start.
	if n := srv.Do(t, "DBSIZE"); n != int64(0) {
		t.Errorf("bench left %v keys in Redis", n)
	}
}

func TestBench_StartsItsOwnRedisAndWritesMarkdown(t *testing.T) {
	redistest.RequireRedis(t)
	r := cli(t, "bench", "--scenario", "payload")
	wantCode(t, r, exitOK)
	wantIn(t, "markdown", r.stdout,
		"# layercache benchmarks",
		"go run ./cmd/layercache bench --scenario payload > BENCHMARKS.md",
		"## Machine", "| Redis | ", "started by the benchmark",
		"## 1. Payload size", "| size | memory hit (p50) |", "| 1 KB |", "| 1 MB |",
	)
}
