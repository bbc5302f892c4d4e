package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newGetCmd() *cobra.Command {
	var f adminFlags
	var raw bool
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Show the value under KEY, the layer that holds it, its TTL and tags",
		Long: `get reads KEY from the stack's layers in lookup order, as the cache would,
and shows the first entry found: its value, the layer that holds it, the time
it has left, its tags and its codec. It reads the layers outside the
application's processes (Redis, memcached, disk); memory layers are private to
each process. It neither loads nor backfills anything.

Exit code 1 when no layer holds KEY.`,
		Example: `  layercache get user:42
  layercache get --raw avatar:42 > avatar.png
  layercache get --json user:42 | jq .ttl`,
		Args: exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if raw && f.json {
				return usagef("--raw and --json exclude each other")
			}
			return runGet(cmd, &f, args[0], raw)
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&raw, "raw", false, "write the stored payload bytes as they are")
	return cmd
}

func runGet(cmd *cobra.Command, f *adminFlags, key string, raw bool) error {
	ctx, cancel := f.context(cmd)
	defer cancel()
	s, err := openFromFlags(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	layers, err := s.usable(stderrOf(cmd))
	if err != nil {
		return err
	}
	var searched []string
	for _, l := range layers {
		if l.inProcess() {
			continue
		}
		searched = append(searched, l.name())
		e, err := l.layer.Get(ctx, key)
		if err != nil {
			fmt.Fprintf(stderrOf(cmd), "note: %s: %v\n", l.name(), err)
			continue
		}
		if e == nil {
			continue
		}
		if raw {
			if e.Negative {
				return fmt.Errorf("%s holds a cached absence for %q, which has no bytes", l.name(), key)
			}
			_, err := stdoutOf(cmd).Write(e.Payload)
			return err
		}
		info, verr := describe(l.name(), e, time.Now())
		if f.json {
			if verr != nil {
				fmt.Fprintf(stderrOf(cmd), "note: %v\n", verr)
			}
			return writeJSON(stdoutOf(cmd), info)
		}
		return printEntry(cmd, key, info, verr)
	}
	if len(searched) == 0 {
		return errors.New("the stack has no layer outside the application's processes to read; memory layers are private to each process (try stats --url)")
	}
	fmt.Fprintf(stderrOf(cmd), "layercache: %q: not found in %s\n", key, strings.Join(searched, ", "))
	return silentError{}
}

func printEntry(cmd *cobra.Command, key string, info entryInfo, valueErr error) error {
	tw := tabwriter.NewWriter(stdoutOf(cmd), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "key\t%s\n", key)
	switch {
	case info.Negative:
		fmt.Fprintf(tw, "value\t(cached absence: the loader reported not found)\n")
	case valueErr != nil:
		fmt.Fprintf(tw, "value\t(%v)\n", valueErr)
	default:
		fmt.Fprintf(tw, "value\t%s\n", compactJSON(info.Value))
	}
	fmt.Fprintf(tw, "layer\t%s\n", info.Layer)
	fmt.Fprintf(tw, "ttl\t%s\n", ttlText(info))
	fmt.Fprintf(tw, "tags\t%s\n", strings.Join(info.Tags, ", "))
	fmt.Fprintf(tw, "codec\t%s\n", info.Codec)
	fmt.Fprintf(tw, "size\t%d bytes\n", info.Size)
	return tw.Flush()
}

// ttlText says how long an entry has left, and whether it is stale.
func ttlText(info entryInfo) string {
	t := "no expiry"
	if info.TTL != nil {
		t = time.Duration(*info.TTL).String()
	}
	if info.Stale {
		t += " (stale: served only while refreshing or on loader errors)"
	}
	return t
}

// compactJSON prints a JSON value on one line.
func compactJSON(v json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return string(v)
	}
	return b.String()
}
