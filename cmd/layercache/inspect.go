package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newInspectCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "inspect KEY",
		Short: "Show what every layer holds under KEY: TTL, size, codec, tags",
		Long: `inspect reads KEY from every layer of the stack, not only the first that
holds it, and shows per layer whether it is there, the time it has left, its
payload size, codec and tags, so that layers that disagree can be spotted.
Memory layers are private to each application process and are listed as such.`,
		Example: `  layercache inspect user:42
  layercache inspect --json user:42`,
		Args: exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd, &f, args[0])
		},
	}
	f.register(cmd, true)
	return cmd
}

// layerView is what inspect says about KEY in one layer.
type layerView struct {
	Layer   string     `json:"layer"`
	Status  string     `json:"status"` // present, absent, private, skipped, error
	Error   string     `json:"error,omitempty"`
	Entry   *entryInfo `json:"entry,omitempty"`
	present bool
}

func runInspect(cmd *cobra.Command, f *adminFlags, key string) error {
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
	now := time.Now()
	views := make([]layerView, 0, len(s.layers))
	for _, l := range s.layers {
		v := layerView{Layer: l.name()}
		switch {
		case l.err != nil:
			v.Status = "skipped"
			v.Error = "in use by a running application"
		case l.inProcess():
			v.Status = "private" // to each application process
		default:
			e, err := l.layer.Get(ctx, key)
			switch {
			case err != nil:
				v.Status, v.Error = "error", err.Error()
			case e == nil:
				v.Status = "absent"
			default:
				info, _ := describe(l.name(), e, now)
				info.Value = nil // inspect is about the entry; get shows values
				v.Status, v.Entry, v.present = "present", &info, true
			}
		}
		views = append(views, v)
	}
	if f.json {
		return writeJSON(stdoutOf(cmd), struct {
			Key    string      `json:"key"`
			Layers []layerView `json:"layers"`
		}{key, views})
	}
	tw := tabwriter.NewWriter(stdoutOf(cmd), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tSTATUS\tTTL\tSIZE\tCODEC\tTAGS")
	for _, v := range views {
		if !v.present {
			status := v.Status
			switch {
			case v.Status == "private":
				status = "private to each application process"
			case v.Error != "":
				status += ": " + v.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", v.Layer, status)
			continue
		}
		e := v.Entry
		status := "present"
		if e.Negative {
			status = "present (cached absence)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", v.Layer, status, ttlText(*e), e.Size, e.Codec, strings.Join(e.Tags, ","))
	}
	return tw.Flush()
}
