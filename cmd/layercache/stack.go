package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/disk"
)

const defaultConfigFile = "layercache.yaml"

// adminFlags are the flags every admin verb takes.
type adminFlags struct {
	config  string
	timeout time.Duration
	json    bool
}

// register adds the flags to cmd; read verbs also get --json.
func (f *adminFlags) register(cmd *cobra.Command, read bool) {
	f.registerWithTimeout(cmd, read, 10*time.Second)
}

func (f *adminFlags) registerWithTimeout(cmd *cobra.Command, read bool, timeout time.Duration) {
	cmd.Flags().StringVarP(&f.config, "config", "c", defaultConfigFile,
		"the application's configuration file (LAYERCACHE_* environment variables override it)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", timeout, "time the whole operation may take")
	if read {
		cmd.Flags().BoolVar(&f.json, "json", false, "print JSON instead of a table")
	}
}

// context returns the context the verb's operations run under.
func (f *adminFlags) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	if f.timeout <= 0 {
		return context.WithCancel(cmd.Context())
	}
	return context.WithTimeout(cmd.Context(), f.timeout)
}

// loadConfig reads the configuration file as layercache.Open would.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil && path == defaultConfigFile && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s in the working directory: give the application's configuration with --config FILE", defaultConfigFile)
	}
	return cfg, err
}

// stack is the layers of a configuration, opened by the command itself so
// that each can be looked at on its own: the cache answers for the stack as
// a whole and does not hand out its layers.
type stack struct {
	cfg    *config.Config
	layers []stackLayer
}

// stackLayer is one layer of a stack.
type stackLayer struct {
	block *config.Block
	layer driver.Layer // nil when it could not be opened
	err   error        // why it could not be opened
}

// name names the layer as the configuration does: "layers[1] (redis)".
func (l stackLayer) name() string { return fmt.Sprintf("%s (%s)", l.block.Path(), l.block.Driver) }

// inProcess reports whether the layer lives in each application's own
// memory, where this process cannot see.
func (l stackLayer) inProcess() bool {
	_, ok := l.layer.(driver.InProcess)
	return ok
}

// locked reports whether the layer's storage is held by another process
// (a disk directory in use by the running application).
func (l stackLayer) locked() bool { return errors.Is(l.err, disk.ErrLocked) }

// openStack opens every layer of cfg. A layer that cannot be opened keeps
// its error; the caller decides what that means (see stack.usable).
func openStack(ctx context.Context, cfg *config.Config) *stack {
	s := &stack{cfg: cfg}
	for _, b := range cfg.Layers {
		sl := stackLayer{block: b}
		d, ok := driver.Lookup(b.Driver)
		ld, isLayer := d.(driver.Driver)
		switch {
		case !ok:
			sl.err = fmt.Errorf("unknown driver %q; this command knows %v", b.Driver, driver.Drivers())
		case !isLayer:
			sl.err = fmt.Errorf("driver %q provides no layer", b.Driver)
		default:
			sl.layer, sl.err = ld.OpenLayer(ctx, b)
			if sl.err != nil {
				sl.layer = nil // a driver may return a typed nil with its error
			}
		}
		s.layers = append(s.layers, sl)
	}
	return s
}

// usable returns the layers that opened, after writing a note to w for
// each one held by a running application. Any other failure to open is an
// error: the configuration does not describe a stack that can be opened.
func (s *stack) usable(w io.Writer) ([]stackLayer, error) {
	var open []stackLayer
	var errs []error
	for _, l := range s.layers {
		switch {
		case l.err == nil:
			open = append(open, l)
		case l.locked():
			fmt.Fprintf(w, "note: %s skipped: its directory is in use by a running application\n", l.name())
		default:
			errs = append(errs, fmt.Errorf("%s: %w", l.name(), l.err))
		}
	}
	return open, errors.Join(errs...)
}

// Close closes every layer that was opened.
func (s *stack) Close() error {
	var errs []error
	for _, l := range s.layers {
		if l.layer != nil {
			errs = append(errs, l.layer.Close())
		}
	}
	return errors.Join(errs...)
}

// openCache builds a cache over the configuration's usable layers and its
// bus, for the verbs that write: their changes then reach every instance.
// A layer held by a running application is left out (it hears of the
// change through the bus); without a bus that is said on w.
func openCache(ctx context.Context, cfg *config.Config, w io.Writer) (*layercache.Cache, error) {
	s := openStack(ctx, cfg)
	layers, err := s.usable(w)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	if len(layers) < len(s.layers) && cfg.Bus == nil {
		fmt.Fprintln(w, "note: no bus is configured: the skipped layers keep their entries")
	}
	dl := make([]driver.Layer, len(layers))
	for i, l := range layers {
		dl[i] = l.layer
	}
	opts := []layercache.Option{
		layercache.WithNamespace(cfg.Namespace),
		layercache.WithDegradation(layercache.Degradation{
			Timeout:          cfg.Degradation.Timeout,
			FailureThreshold: cfg.Degradation.FailureThreshold,
			RetryAfter:       cfg.Degradation.RetryAfter,
		}),
	}
	if b := cfg.Bus; b != nil {
		d, found := driver.Lookup(b.Driver)
		bd, ok := d.(driver.BusDriver)
		if !ok {
			_ = s.Close()
			if !found {
				return nil, fmt.Errorf("%s: unknown driver %q; this command knows %v", b.Path(), b.Driver, driver.Drivers())
			}
			return nil, fmt.Errorf("%s: driver %q provides no bus", b.Path(), b.Driver)
		}
		bus, err := bd.OpenBus(ctx, b, driver.Stack{Namespace: cfg.Namespace, Layers: dl})
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("%s (%s): %w", b.Path(), b.Driver, err)
		}
		opts = append(opts, layercache.WithBus(bus))
	}
	c, err := layercache.New(dl, opts...)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return c, nil
}

// openFromFlags loads the configuration named by f and opens its stack.
func openFromFlags(ctx context.Context, f *adminFlags) (*stack, error) {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return nil, err
	}
	return openStack(ctx, cfg), nil
}

// stderrOf is where a verb writes notes.
func stderrOf(cmd *cobra.Command) io.Writer { return cmd.ErrOrStderr() }

// stdoutOf is where a verb writes its result.
func stdoutOf(cmd *cobra.Command) io.Writer { return cmd.OutOrStdout() }
