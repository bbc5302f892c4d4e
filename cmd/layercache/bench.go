package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// scenario is one table of the benchmark report.
type scenario struct {
	name  string // for --scenario
	title string
	run   func(ctx context.Context, env *benchEnv) (*table, error)
}

// scenarios are run in this order.
var scenarios = []scenario{
	{"warm-hit", "Warm hit", benchWarmHit},
	{"stampede", "Stampede", benchStampede},
	{"http", "HTTP throughput (Gin)", benchHTTP},
	{"slow-redis", "Slow Redis", benchSlowRedis},
	{"dead-redis", "Dead Redis", benchDeadRedis},
	{"queue", "Queue amplification", benchQueue},
	{"memory-pressure", "Memory pressure", benchMemoryPressure},
	{"payload", "Payload size", benchPayload},
	{"singleflight", "Distributed single-flight", benchSingleflight},
	{"invalidation", "Cross-process invalidation", benchInvalidation},
}

func scenarioNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// table is a scenario's result.
type table struct {
	Name        string     `json:"name"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Columns     []string   `json:"columns"`
	Rows        [][]string `json:"rows"`
	Notes       []string   `json:"notes,omitempty"`
	Took        string     `json:"took"`
}

func (t *table) row(cells ...string) { t.Rows = append(t.Rows, cells) }

// report is the whole benchmark output.
type report struct {
	Machine   []fact   `json:"machine"`
	Command   string   `json:"command"`
	Scenarios []*table `json:"scenarios"`
	Took      string   `json:"took"`
}

// fact is one line of the machine description.
type fact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// defaultHTTPTime is how long each variant of the HTTP scenario runs.
const defaultHTTPTime = 6 * time.Second

type benchFlags struct {
	redisURL  string
	scenarios []string
	format    string
	httpTime  time.Duration
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [--scenario NAME...] [--redis URL] [--format markdown|json]",
		Short: "Run the benchmark scenarios against a real Redis",
		Long: `bench measures layercache in scenarios drawn from the questions people ask a
layered cache: how fast is a warm hit, does a stampede reach the database, what
happens when Redis is slow or dead, how much memory pressure costs, how fast
invalidations travel between processes. It starts its own redis-server on a
free loopback port (which must be on PATH), or uses --redis URL; slow and dead
Redis are simulated by a TCP proxy it puts in front of the server.

The report goes to stdout (markdown, or JSON with --format json), with a short
description of the machine on top; a progress line per scenario goes to
stderr. All the scenarios together take well under a minute on a 2-core machine.

Scenarios: ` + strings.Join(scenarioNames(), ", ") + `.`,
		Example: `  layercache bench > BENCHMARKS.md
  layercache bench --scenario stampede,payload --format json
  layercache bench --redis redis://127.0.0.1:6379/15`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.format != "markdown" && f.format != "json" {
				return usagef("--format must be markdown or json, got %q", f.format)
			}
			for _, s := range f.scenarios {
				if !slices.Contains(scenarioNames(), s) {
					return usagef("unknown scenario %q; the scenarios are %s", s, strings.Join(scenarioNames(), ", "))
				}
			}
			if f.httpTime <= 0 {
				return usagef("--http-duration must be positive")
			}
			return runBench(cmd.Context(), &f, commandLine(&f), stdoutOf(cmd), stderrOf(cmd))
		},
	}
	cmd.Flags().StringVar(&f.redisURL, "redis", "", "use this Redis (redis:// URL) instead of starting one; keys go under layercache-bench: and are removed at the end")
	cmd.Flags().StringSliceVarP(&f.scenarios, "scenario", "s", nil, "run only these scenarios (repeatable, or comma-separated)")
	cmd.Flags().StringVarP(&f.format, "format", "f", "markdown", "report format: markdown or json")
	cmd.Flags().DurationVar(&f.httpTime, "http-duration", defaultHTTPTime, "how long each variant of the HTTP scenario runs")
	return cmd
}

// commandLine rebuilds the command that reproduces this run, without the
// Redis URL (which may hold a password).
func commandLine(f *benchFlags) string {
	parts := []string{"go run ./cmd/layercache bench"}
	if len(f.scenarios) > 0 {
		parts = append(parts, "--scenario "+strings.Join(f.scenarios, ","))
	}
	if f.format != "markdown" {
		parts = append(parts, "--format "+f.format)
	}
	if f.httpTime != defaultHTTPTime {
		parts = append(parts, "--http-duration "+f.httpTime.String())
	}
	if f.redisURL != "" {
		parts = append(parts, "--redis URL")
	}
	return strings.Join(parts, " ")
}

func runBench(ctx context.Context, f *benchFlags, command string, stdout, stderr io.Writer) (err error) {
	start := time.Now()
	env, err := newBenchEnv(ctx, f, stderr)
	if err != nil {
		return err
	}
	defer func() { env.Close() }()
	r := &report{Machine: env.machine(), Command: command}
	selected := scenarios
	if len(f.scenarios) > 0 {
		selected = slices.DeleteFunc(slices.Clone(scenarios), func(s scenario) bool { return !slices.Contains(f.scenarios, s.name) })
	}
	for i, s := range selected {
		fmt.Fprintf(stderr, "bench: scenario %d of %d: %s (elapsed %s)\n", i+1, len(selected), s.name, time.Since(start).Round(time.Second))
		sstart := time.Now()
		t, err := s.run(ctx, env)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", s.name, err)
		}
		t.Name, t.Title, t.Took = s.name, s.title, time.Since(sstart).Round(100*time.Millisecond).String()
		r.Scenarios = append(r.Scenarios, t)
	}
	r.Took = time.Since(start).Round(time.Second).String()
	fmt.Fprintf(stderr, "bench: done in %s\n", r.Took)
	if f.format == "json" {
		return writeJSON(stdout, r)
	}
	return writeMarkdown(stdout, r)
}

// writeMarkdown prints the report as the BENCHMARKS.md document.
func writeMarkdown(w io.Writer, r *report) error {
	var b strings.Builder
	b.WriteString("# layercache benchmarks\n\n")
	b.WriteString("Produced by `layercache bench` on the machine below. Each scenario runs its baseline in the same run;\n")
	b.WriteString("read the ratios rather than the absolute numbers, which move with the machine and its load.\n\n")
	fmt.Fprintf(&b, "Reproduce with:\n\n```sh\n%s > BENCHMARKS.md\n```\n\n", r.Command)
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	for _, f := range r.Machine {
		fmt.Fprintf(&b, "| %s | %s |\n", f.Name, mdEscape(f.Value))
	}
	fmt.Fprintf(&b, "| total time | %s |\n", r.Took)
	for i, t := range r.Scenarios {
		fmt.Fprintf(&b, "\n## %d. %s\n\n%s\n\n", i+1, t.Title, t.Description)
		b.WriteString("| " + strings.Join(t.Columns, " | ") + " |\n")
		b.WriteString("|" + strings.Repeat("---|", len(t.Columns)) + "\n")
		for _, row := range t.Rows {
			cells := make([]string, len(row))
			for j, c := range row {
				cells[j] = mdEscape(c)
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
		if len(t.Notes) > 0 {
			b.WriteString("\n")
			for _, n := range t.Notes {
				b.WriteString("- " + n + "\n")
			}
		}
		fmt.Fprintf(&b, "\n(`--scenario %s`, %s)\n", t.Name, t.Took)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
