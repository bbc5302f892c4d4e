package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/layercache/layercache/driver"
)

func newPingCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Check each layer's health and latency (exit code 1 when one is down)",
		Long: `ping opens every layer of the stack and pings those that talk to a server,
showing each one's state and round-trip time. It exits with code 1 when a
layer is down, naming it, so that it can serve as a readiness check:

  layercache ping --config /etc/myapp/cache.yaml || exit 1

A disk directory held by the running application counts as up.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPing(cmd, &f) },
	}
	f.registerWithTimeout(cmd, true, 2*time.Second)
	return cmd
}

// pingResult is one layer's health.
type pingResult struct {
	Layer   string        `json:"layer"`
	Up      bool          `json:"up"`
	Latency *durationJSON `json:"latency,omitempty"`
	Detail  string        `json:"detail,omitempty"`
}

func runPing(cmd *cobra.Command, f *adminFlags) error {
	ctx, cancel := f.context(cmd)
	defer cancel()
	s, err := openFromFlags(ctx, f)
	if err != nil {
		return err
	}
	defer s.Close()
	results := make([]pingResult, 0, len(s.layers))
	var down []string
	for _, l := range s.layers {
		r := pingResult{Layer: l.name(), Up: true}
		switch p, canPing := l.layer.(driver.Pinger); {
		case l.locked():
			r.Detail = "held by a running application"
		case l.err != nil:
			r.Up, r.Detail = false, l.err.Error()
		case canPing:
			start := time.Now()
			err := p.Ping(ctx)
			d := durationJSON(time.Since(start).Round(time.Microsecond))
			r.Latency = &d
			if err != nil {
				r.Up, r.Detail = false, err.Error()
			}
		case l.inProcess():
			r.Detail = "in-process"
		default:
			r.Detail = "opened (nothing to ping)"
		}
		if !r.Up {
			down = append(down, r.Layer+": "+r.Detail)
		}
		results = append(results, r)
	}
	if f.json {
		if err := writeJSON(stdoutOf(cmd), results); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdoutOf(cmd), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LAYER\tSTATE\tLATENCY\tDETAIL")
		for _, r := range results {
			state, lat := "up", "-"
			if !r.Up {
				state = "DOWN"
			}
			if r.Latency != nil {
				lat = time.Duration(*r.Latency).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Layer, state, lat, r.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("down: %s", strings.Join(down, "; "))
	}
	return nil
}
