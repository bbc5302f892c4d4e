package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/layercache/layercache/drivers/disk"
	"github.com/layercache/layercache/drivers/redis"
)

func newStatsCmd() *cobra.Command {
	var f adminFlags
	var url string
	var headers []string
	cmd := &cobra.Command{
		Use:   "stats [--url URL]",
		Short: "Show per-layer counters: hits, misses, errors, breaker state",
		Long: `With --url, stats reads the counters of a running application from the
endpoint it serves with layercache.StatsHandler: per layer hits, misses,
errors, skipped operations, mean latency and circuit-breaker state, and the
cache's loads and bus traffic. That endpoint answers only loopback requests
unless the application gives it an authorization function; pass what it
checks with --header.

Without --url, stats shows what the configured layers report about
themselves: for Redis the server's keyspace hits and misses (server-wide),
its key count and memory; for disk the entries and bytes stored.`,
		Example: `  layercache stats --url http://127.0.0.1:8080/debug/cache
  layercache stats --url https://app/debug/cache --header "Authorization: Bearer $TOKEN" --json
  layercache stats --config prod.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url != "" {
				return runRemoteStats(cmd, &f, url, headers)
			}
			return runLayerStats(cmd, &f)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&url, "url", "", "the application's stats endpoint (layercache.StatsHandler)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, `an HTTP header for --url, "Name: value" (repeatable)`)
	return cmd
}

// remoteStats mirrors the JSON of layercache.StatsHandler.
type remoteStats struct {
	Layers []struct {
		Name          string
		Hits          uint64
		Misses        uint64
		Errors        uint64
		Skipped       uint64
		MeanLatency   time.Duration
		P95           time.Duration
		Breaker       string
		BreakerOpened uint64
	}
	Loads, LoadErrors, NotFound, Deduplicated, StaleServed uint64
	WriteBackDropped                                       uint64
	BusPublished, BusReceived, BusErrors                   uint64
	JournalPending                                         int
	JournalReplayed, JournalLost                           uint64
}

func runRemoteStats(cmd *cobra.Command, f *adminFlags, url string, headers []string) error {
	ctx, cancel := f.context(cmd)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usagef("--url: %v", err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return usagef(`--header %q: want "Name: value"`, h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	var s remoteStats
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("%s did not answer with layercache statistics: %w", url, err)
	}
	if f.json {
		_, err := stdoutOf(cmd).Write(body)
		return err
	}
	tw := tabwriter.NewWriter(stdoutOf(cmd), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tHITS\tMISSES\tERRORS\tSKIPPED\tLATENCY (MEAN/P95)\tBREAKER")
	for _, l := range s.Layers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%v/%v\t%s (opened %d times)\n",
			l.Name, l.Hits, l.Misses, l.Errors, l.Skipped, l.MeanLatency, l.P95, l.Breaker, l.BreakerOpened)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdoutOf(cmd), "loads %d (errors %d, not found %d), callers that shared a load %d, stale served %d\n",
		s.Loads, s.LoadErrors, s.NotFound, s.Deduplicated, s.StaleServed)
	fmt.Fprintf(stdoutOf(cmd), "bus: published %d, received %d, errors %d; journal: pending %d, replayed %d, lost %d; write-backs dropped %d\n",
		s.BusPublished, s.BusReceived, s.BusErrors, s.JournalPending, s.JournalReplayed, s.JournalLost, s.WriteBackDropped)
	return nil
}

// layerFigures is what one layer reports about itself.
type layerFigures struct {
	Layer   string            `json:"layer"`
	Figures map[string]string `json:"figures,omitempty"`
	Note    string            `json:"note,omitempty"`
}

func runLayerStats(cmd *cobra.Command, f *adminFlags) error {
	ctx, cancel := f.context(cmd)
	defer cancel()
	s, err := openFromFlags(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.usable(stderrOf(cmd)); err != nil {
		return err
	}
	var out []layerFigures
	for _, l := range s.layers {
		lf := layerFigures{Layer: l.name()}
		switch layer := l.layer.(type) {
		case nil:
			lf.Note = "held by a running application; use --url"
		case *redis.Layer:
			lf.Figures, err = redisFigures(ctx, layer)
			if err != nil {
				lf.Note = err.Error()
			}
		case *disk.Layer:
			lf.Figures = map[string]string{
				"entries":       strconv.Itoa(layer.Len()),
				"bytes":         strconv.FormatInt(layer.Size(), 10),
				"corrupt_found": strconv.FormatUint(layer.Stats().Corrupt, 10),
			}
		default:
			if l.inProcess() {
				lf.Note = "private to each application process; use --url"
			} else {
				lf.Note = "reports no figures of its own; use --url"
			}
		}
		out = append(out, lf)
	}
	if f.json {
		return writeJSON(stdoutOf(cmd), out)
	}
	tw := tabwriter.NewWriter(stdoutOf(cmd), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tFIGURES")
	for _, lf := range out {
		text := lf.Note
		if len(lf.Figures) > 0 {
			text = figuresText(lf.Figures)
		}
		fmt.Fprintf(tw, "%s\t%s\n", lf.Layer, text)
	}
	return tw.Flush()
}

// redisFigures reads the server's own counters (server-wide: Redis does
// not count per key prefix).
func redisFigures(ctx context.Context, l *redis.Layer) (map[string]string, error) {
	var client goredis.UniversalClient
	if !l.As(&client) {
		return nil, fmt.Errorf("the layer does not expose its client")
	}
	info, err := client.Info(ctx, "stats", "memory", "server").Result()
	if err != nil {
		return nil, err
	}
	fields := parseInfo(info)
	figs := map[string]string{}
	for _, k := range []string{"redis_version", "keyspace_hits", "keyspace_misses", "evicted_keys", "used_memory_human"} {
		if v, ok := fields[k]; ok {
			figs[k] = v
		}
	}
	if n, err := client.DBSize(ctx).Result(); err == nil {
		figs["db_keys"] = strconv.FormatInt(n, 10)
	}
	return figs, nil
}

// parseInfo reads the "key:value" lines of an INFO reply.
func parseInfo(info string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

// figuresText prints figures as "name=value" in a stable order.
func figuresText(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}
