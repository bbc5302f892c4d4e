package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/drivers/disk"
	"github.com/layercache/layercache/drivers/memory"
)

func newDemoCmd() *cobra.Command {
	var dir, configPath string
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR | --config FILE]",
		Short: "Show in a few seconds what layercache does (no Redis needed)",
		Long: `demo runs the library on a small stack and prints what happened: the latency
of a warm hit, a stampede of 100 callers that runs the loader once,
stale-while-revalidate serving at once while one refresh runs, and the
persistent layer answering after the stack is closed and opened again.

By default the stack is memory + disk, in a temporary directory (or --dir),
and needs no Redis. With --config it runs on the stack a configuration file
describes; when that stack has a Redis layer and a bus, a second instance
shows an invalidation made by the first. The demo's keys start with
"layercache-demo:" and are deleted at the end.`,
		Example: `  go run ./cmd/layercache demo
  layercache demo --config examples/configs/redis.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir != "" && configPath != "" {
				return usagef("--dir and --config exclude each other")
			}
			d := &demo{out: stdoutOf(cmd)}
			if configPath != "" {
				cfg, err := config.Load(configPath)
				if err != nil {
					return err
				}
				d.describeConfig(cfg, configPath)
			} else {
				if dir == "" {
					tmp, err := os.MkdirTemp("", "layercache-demo-")
					if err != nil {
						return err
					}
					defer os.RemoveAll(tmp)
					dir = tmp
				}
				d.describeDefault(dir)
			}
			return d.run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the default stack's disk layer (default: a temporary one)")
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "run on the stack this configuration file describes")
	return cmd
}

// demoPrefix starts every key the demo writes.
const demoPrefix = "layercache-demo:"

// demo runs the demonstration on one stack.
type demo struct {
	out   io.Writer
	title string
	// open opens the stack; it is called again to show a restart.
	open func(opts ...layercache.Option) (*layercache.Cache, error)
	// openPeer opens a second instance of the stack, or is nil when the
	// stack has no shared layer and bus to show an invalidation with.
	openPeer func() (*layercache.Cache, error)
	peerNote string
	rows     [][2]string
}

// product is the value the demo caches.
type product struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

func (d *demo) describeDefault(dir string) {
	d.title = fmt.Sprintf("stack: memory + disk (%s), no Redis", dir)
	d.open = func(opts ...layercache.Option) (*layercache.Cache, error) {
		l1, err := memory.New(memory.Options{MaxSize: 10_000})
		if err != nil {
			return nil, err
		}
		l3, err := disk.New(disk.Options{Dir: dir})
		if err != nil {
			_ = l1.Close()
			return nil, err
		}
		return layercache.New([]driver.Layer{l1, l3}, opts...)
	}
	d.peerNote = "needs a Redis layer and a bus: run demo --config with one"
}

func (d *demo) describeConfig(cfg *config.Config, path string) {
	var drivers []string
	for _, b := range cfg.Layers {
		drivers = append(drivers, b.Driver)
	}
	d.title = fmt.Sprintf("stack: %v from %s", drivers, path)
	d.open = func(opts ...layercache.Option) (*layercache.Cache, error) { return layercache.OpenConfig(cfg, opts...) }
	switch {
	case !slices.Contains(drivers, "redis"):
		d.peerNote = "the stack has no Redis layer"
	case cfg.Bus == nil:
		d.peerNote = "the stack has no bus: other instances keep their in-process copies until they expire"
	default:
		// A disk directory belongs to one process, so the second
		// instance runs without the disk layers.
		peer := *cfg
		peer.Layers = slices.DeleteFunc(slices.Clone(cfg.Layers), func(b *config.Block) bool { return b.Driver == "disk" })
		d.openPeer = func() (*layercache.Cache, error) { return layercache.OpenConfig(&peer) }
	}
}

func (d *demo) add(what, result string) { d.rows = append(d.rows, [2]string{what, result}) }

func (d *demo) run(ctx context.Context) (err error) {
	c, err := d.open()
	if err != nil {
		return err
	}
	defer func() {
		if c != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if err := d.hits(ctx, c); err != nil {
		return err
	}
	if err := d.stampede(ctx, c); err != nil {
		return err
	}
	if err := d.staleWhileRevalidate(ctx, c); err != nil {
		return err
	}
	if err := d.invalidation(ctx, c); err != nil {
		return err
	}
	// The restart closes c and opens the stack again.
	c, err = d.restart(ctx, c)
	if err != nil {
		return err
	}
	if err := c.Delete(ctx, demoKeys...); err != nil {
		return fmt.Errorf("deleting the demo's keys: %w", err)
	}
	fmt.Fprintf(d.out, "layercache demo — %s\n\n", d.title)
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tRESULT")
	for _, r := range d.rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

var (
	keyProduct = demoPrefix + "product:7"
	keyHot     = demoPrefix + "product:8"
	keyStale   = demoPrefix + "product:9"
	keyShared  = demoPrefix + "product:10"
	demoKeys   = []string{keyProduct, keyHot, keyStale, keyShared}
)

// slowLoader returns a loader that takes delay, like a database query, and
// counts its calls.
func slowLoader(id int, delay time.Duration, calls *atomic.Int32) func(context.Context) (product, error) {
	return func(ctx context.Context) (product, error) {
		calls.Add(1)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return product{}, ctx.Err()
		}
		return product{ID: id, Name: "Espresso machine", Price: 249}, nil
	}
}

func (d *demo) hits(ctx context.Context, c *layercache.Cache) error {
	var calls atomic.Int32
	load := slowLoader(7, 50*time.Millisecond, &calls)
	ttl := layercache.WithTTL(time.Minute)
	start := time.Now()
	if _, err := layercache.Get(ctx, c, keyProduct, load, ttl); err != nil {
		return err
	}
	d.add("cold miss (50 ms loader)", fmt.Sprintf("%s, loader ran %s", fmtDur(time.Since(start)), times(calls.Load())))

	const n = 100_000
	start = time.Now()
	for range n {
		if _, err := layercache.Get(ctx, c, keyProduct, load, ttl); err != nil {
			return err
		}
	}
	avg := time.Since(start) / n
	d.add("warm hit from memory", fmt.Sprintf("%s per Get (mean of %d), loader runs in all: %d", fmtDur(avg), n, calls.Load()))
	return nil
}

func (d *demo) stampede(ctx context.Context, c *layercache.Cache) error {
	var calls atomic.Int32
	load := slowLoader(8, 100*time.Millisecond, &calls)
	const callers = 100
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	start := time.Now()
	for range callers {
		wg.Go(func() {
			if _, err := layercache.Get(ctx, c, keyHot, load, layercache.WithTTL(time.Minute)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	d.add("stampede: 100 callers, one cold key (100 ms loader)",
		fmt.Sprintf("loader ran %s; all %d callers served in %s", times(calls.Load()), callers, fmtDur(time.Since(start))))
	return nil
}

func (d *demo) staleWhileRevalidate(ctx context.Context, c *layercache.Cache) error {
	var calls atomic.Int32
	opts := []layercache.EntryOption{layercache.WithTTL(100 * time.Millisecond), layercache.WithStaleWhileRevalidate(time.Minute)}
	if _, err := layercache.Get(ctx, c, keyStale, slowLoader(9, 0, &calls), opts...); err != nil {
		return err
	}
	time.Sleep(150 * time.Millisecond) // the entry is now stale
	calls.Store(0)
	const callers = 20
	const refresh = 300 * time.Millisecond
	load := slowLoader(9, refresh, &calls)
	waits := make([]time.Duration, callers)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			start := time.Now()
			_, err := layercache.Get(ctx, c, keyStale, load, opts...)
			waits[i] = time.Since(start)
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	slices.Sort(waits)
	atOnce := 0
	for _, w := range waits {
		if w < refresh/2 {
			atOnce++
		}
	}
	d.add("stale-while-revalidate: 20 callers, stale key (300 ms loader)",
		fmt.Sprintf("%d served the stale value at once (slowest %s); %d waited for the refresh (%s); loader ran %s",
			atOnce, fmtDur(waits[max(atOnce-1, 0)]), callers-atOnce, fmtDur(waits[callers-1]), times(calls.Load())))
	return nil
}

// answered records which layer answered the last read, for the restart.
type answered struct {
	layer atomic.Value // string
}

func (a *answered) Begin(ctx context.Context, _ layercache.Operation) context.Context { return ctx }
func (a *answered) Event(context.Context, layercache.Event)                           {}
func (a *answered) Finish(_ context.Context, op layercache.Operation, out layercache.Outcome) {
	if op.Kind == layercache.OpGet {
		a.layer.Store(out.Layer)
	}
}

func (d *demo) restart(ctx context.Context, c *layercache.Cache) (*layercache.Cache, error) {
	if err := c.Close(); err != nil {
		return nil, err
	}
	obs := &answered{}
	c, err := d.open(layercache.WithObserver(obs))
	if err != nil {
		return nil, err
	}
	var calls atomic.Int32
	start := time.Now()
	if _, err := layercache.Get(ctx, c, keyProduct, slowLoader(7, 50*time.Millisecond, &calls), layercache.WithTTL(time.Minute)); err != nil {
		_ = c.Close()
		return nil, err
	}
	took := time.Since(start)
	result := fmt.Sprintf("served by %s in %s, loader not run", obs.layer.Load(), fmtDur(took))
	if calls.Load() > 0 {
		result = fmt.Sprintf("no layer kept it: loader ran again (%s)", fmtDur(took))
	}
	d.add("close the stack, open it again, read the first key", result)
	return c, nil
}

func (d *demo) invalidation(ctx context.Context, a *layercache.Cache) error {
	const what = "second instance, after a Delete on the first"
	if d.openPeer == nil {
		d.add(what, "not shown: "+d.peerNote)
		return nil
	}
	b, err := d.openPeer()
	if err != nil {
		return fmt.Errorf("second instance: %w", err)
	}
	defer b.Close()
	// Set writes the shared layer before it returns, where the second
	// instance finds the value and copies it into its memory layer.
	if err := layercache.Set(ctx, a, keyShared, product{ID: 10, Name: "Grinder", Price: 99}, layercache.WithTTL(time.Minute)); err != nil {
		return err
	}
	if _, ok, err := layercache.Lookup[product](ctx, b, keyShared); err != nil || !ok {
		return fmt.Errorf("second instance did not find the first one's value in the shared layer (ok=%v, err=%v)", ok, err)
	}
	start := time.Now()
	if err := a.Delete(ctx, keyShared); err != nil {
		return err
	}
	deadline := start.Add(2 * time.Second)
	for time.Now().Before(deadline) {
		_, ok, err := layercache.Lookup[product](ctx, b, keyShared)
		if err != nil {
			return err
		}
		if !ok {
			d.add(what, fmt.Sprintf("its copy was gone %s after the Delete (bus + shared layer)", fmtDur(time.Since(start))))
			return nil
		}
		time.Sleep(100 * time.Microsecond)
	}
	d.add(what, "STILL HELD its copy 2 s after the Delete: is the bus reaching it?")
	return nil
}

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3g s", d.Seconds())
}

// times says "1 time", "2 times".
func times(n int32) string {
	if n == 1 {
		return "1 time"
	}
	return fmt.Sprintf("%d times", n)
}
