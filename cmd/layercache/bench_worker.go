package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/layercache/layercache"
)

// The cross-process scenarios run a second instance in a worker process,
// the same executable started with the hidden bench-worker verb. It opens
// memory + Redis (+ bus, + coordinator) in the keyspace it is given and
// answers one line per command read from stdin:
//
//	load KEY N   run N concurrent Gets of KEY (100 ms loader) -> "loads L"
//	warm KEY     read KEY until it is there (so it is in memory) -> "warm"
//	watch KEY    say "watching", read KEY until it is gone -> "missed UNIXNANO"
//
// It exits when stdin closes.

// workerRedisEnv carries the Redis URL to the worker, out of its command
// line (where a password would show). It does not start with LAYERCACHE_,
// which names configuration overrides.
const workerRedisEnv = "LCBENCH_REDIS_URL"

// workerLoadTime is the loader's duration in the single-flight scenario.
const workerLoadTime = 100 * time.Millisecond

func newBenchWorkerCmd() *cobra.Command {
	var space string
	var coord bool
	cmd := &cobra.Command{
		Use:    "bench-worker",
		Short:  "The second process of bench's cross-process scenarios",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), os.Getenv(workerRedisEnv), space, coord, cmd.InOrStdin(), stdoutOf(cmd))
		},
	}
	cmd.Flags().StringVar(&space, "space", "", "the keyspace shared with the parent")
	cmd.Flags().BoolVar(&coord, "coordinator", false, "coordinate loads across processes")
	return cmd
}

func runWorker(ctx context.Context, url, space string, coord bool, in io.Reader, out io.Writer) error {
	opts, err := goredis.ParseURL(url)
	if err != nil || space == "" {
		return usagef("bench-worker is started by bench (needs %s and --space)", workerRedisEnv)
	}
	env := &benchEnv{redis: opts}
	st, err := env.open(stackSpec{memory: true, redis: true, bus: true, coord: coord, space: space})
	if err != nil {
		return err
	}
	defer st.Close()
	w := bufio.NewWriter(out)
	say := func(format string, args ...any) error {
		fmt.Fprintf(w, format+"\n", args...)
		return w.Flush()
	}
	if err := say("ready"); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			return fmt.Errorf("bench-worker: bad command %q", sc.Text())
		}
		key := f[1]
		switch f[0] {
		case "load":
			if len(f) != 3 {
				return fmt.Errorf("bench-worker: bad command %q", sc.Text())
			}
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return err
			}
			o := &origin{d: workerLoadTime}
			if _, _, err := concurrently(n, func(int) error {
				_, err := layercache.Get(ctx, st.Cache, key, o.load(1), minuteTTL)
				return err
			}); err != nil {
				return err
			}
			err = say("loads %d", o.calls.Load())
		case "warm":
			err = waitFor(ctx, st.Cache, key, true)
			if err == nil {
				err = say("warm")
			}
		case "watch":
			if err := say("watching"); err != nil {
				return err
			}
			err = waitFor(ctx, st.Cache, key, false)
			if err == nil {
				err = say("missed %d", time.Now().UnixNano())
			}
		default:
			err = fmt.Errorf("bench-worker: unknown command %q", f[0])
		}
		if err != nil {
			return err
		}
	}
	return sc.Err()
}

// waitFor reads key until it is present (or absent), for at most 5 s.
// It polls with short sleeps so as to leave the CPU to the others.
func waitFor(ctx context.Context, c *layercache.Cache, key string, present bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, ok, err := layercache.Lookup[item](ctx, c, key)
		if err != nil {
			return err
		}
		if ok == present {
			return nil
		}
		time.Sleep(20 * time.Microsecond)
	}
	return fmt.Errorf("bench-worker: %s still %s after 5 s", key, map[bool]string{true: "absent", false: "present"}[present])
}

// worker is a running worker process.
type worker struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

func (e *benchEnv) startWorker(ctx context.Context, space string, coord bool) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"bench-worker", "--space", space}
	if coord {
		args = append(args, "--coordinator")
	}
	w := &worker{cmd: exec.CommandContext(ctx, exe, args...)}
	w.cmd.Env = append(os.Environ(), workerRedisEnv+"="+e.url)
	w.cmd.Stderr = &w.stderr
	if w.in, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w.out = bufio.NewScanner(stdout)
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	if _, err := w.expect("ready"); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// send writes a command line.
func (w *worker) send(format string, args ...any) error {
	_, err := fmt.Fprintf(w.in, format+"\n", args...)
	return err
}

// expect reads the next line, which must start with word, and returns the
// rest of it.
func (w *worker) expect(word string) (string, error) {
	if !w.out.Scan() {
		return "", fmt.Errorf("worker process ended: %s", strings.TrimSpace(w.stderr.String()))
	}
	rest, ok := strings.CutPrefix(w.out.Text(), word)
	if !ok {
		return "", fmt.Errorf("worker process said %q, want %q", w.out.Text(), word)
	}
	return strings.TrimSpace(rest), nil
}

// Close ends the worker by closing its stdin.
func (w *worker) Close() error {
	_ = w.in.Close()
	err := w.cmd.Wait()
	if err != nil && w.stderr.Len() > 0 {
		err = errors.Join(err, errors.New(strings.TrimSpace(w.stderr.String())))
	}
	return err
}

func benchSingleflight(ctx context.Context, env *benchEnv) (*table, error) {
	const perProcess, rounds = 30, 5
	t := &table{
		Description: fmt.Sprintf("Two processes, each with memory + Redis + bus, ask for the same cold key, %d concurrent callers each "+
			"(%d requests), %d rounds with a new key each; the loader takes %v. Without a coordinator each process loads once; "+
			"with the Redis coordinator one load serves both.", perProcess, 2*perProcess, rounds, workerLoadTime),
		Columns: []string{"stack", "requests", "loader runs", "per round", "time per round (mean, this process)"},
	}
	for _, coord := range []bool{false, true} {
		space := env.newSpace()
		st, err := env.open(stackSpec{memory: true, redis: true, bus: true, coord: coord, space: space})
		if err != nil {
			return nil, err
		}
		w, err := env.startWorker(ctx, space, coord)
		if err != nil {
			st.Close()
			return nil, err
		}
		loads, per, err := singleflightRounds(ctx, st, w, perProcess, rounds)
		err = errors.Join(err, w.Close(), st.Close())
		if err != nil {
			return nil, err
		}
		name := "2 processes, no coordinator"
		if coord {
			name = "2 processes + Redis coordinator"
		}
		t.row(name, strconv.Itoa(2*perProcess*rounds), strconv.FormatInt(loads, 10),
			strconv.FormatFloat(float64(loads)/rounds, 'f', 1, 64), fmtDur(per.mean()))
	}
	return t, nil
}

func singleflightRounds(ctx context.Context, st *benchStack, w *worker, perProcess, rounds int) (int64, samples, error) {
	var loads int64
	var per samples
	for r := range rounds {
		key := "sf:" + strconv.Itoa(r)
		o := &origin{d: workerLoadTime}
		if err := w.send("load %s %d", key, perProcess); err != nil {
			return 0, nil, err
		}
		_, took, err := concurrently(perProcess, func(int) error {
			_, err := layercache.Get(ctx, st.Cache, key, o.load(1), minuteTTL)
			return err
		})
		if err != nil {
			return 0, nil, err
		}
		theirs, err := w.expect("loads")
		if err != nil {
			return 0, nil, err
		}
		n, err := strconv.ParseInt(theirs, 10, 64)
		if err != nil {
			return 0, nil, err
		}
		loads += o.calls.Load() + n
		per = append(per, took)
	}
	return loads, per, nil
}

// invalidationSamples is how many deletes the invalidation scenario times.
const invalidationSamples = 500

func benchInvalidation(ctx context.Context, env *benchEnv) (*table, error) {
	const n = invalidationSamples
	t := &table{
		Description: fmt.Sprintf("Two processes with memory + Redis + bus. The second holds a key in memory; the first deletes it; "+
			"the time is measured from just before the Delete until the second process's next read misses (%d samples; the "+
			"second process reads every ~50 µs).", n),
		Columns: []string{"samples", "p50", "p99", "max"},
	}
	space := env.newSpace()
	st, err := env.open(stackSpec{memory: true, redis: true, bus: true, space: space})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	w, err := env.startWorker(ctx, space, false)
	if err != nil {
		return nil, err
	}
	var s samples
	for i := range n {
		key := "inv:" + strconv.Itoa(i)
		d, err := invalidationSample(ctx, st, w, key)
		if err != nil {
			return nil, errors.Join(err, w.Close())
		}
		s = append(s, d)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	t.row(strconv.Itoa(n), fmtDur(s.pct(50)), fmtDur(s.pct(99)), fmtDur(s.max()))
	t.Notes = []string{"The change travels as: UNLINK in Redis, PUBLISH on the bus, delivery to the second process, which drops its memory copy; its next read then misses memory and Redis."}
	return t, nil
}

func invalidationSample(ctx context.Context, st *benchStack, w *worker, key string) (time.Duration, error) {
	if err := layercache.Set(ctx, st.Cache, key, item{ID: 1}, minuteTTL); err != nil {
		return 0, err
	}
	if err := w.send("warm %s", key); err != nil {
		return 0, err
	}
	if _, err := w.expect("warm"); err != nil {
		return 0, err
	}
	if err := w.send("watch %s", key); err != nil {
		return 0, err
	}
	if _, err := w.expect("watching"); err != nil {
		return 0, err
	}
	start := time.Now().UnixNano()
	if err := st.Delete(ctx, key); err != nil {
		return 0, err
	}
	at, err := w.expect("missed")
	if err != nil {
		return 0, err
	}
	missed, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(missed - start), nil
}
