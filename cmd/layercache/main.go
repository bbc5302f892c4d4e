package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	// The drivers a configuration file may name.
	_ "github.com/layercache/layercache/drivers/disk"
	_ "github.com/layercache/layercache/drivers/memcached"
	_ "github.com/layercache/layercache/drivers/memory"
	_ "github.com/layercache/layercache/drivers/redis"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a failed operation, a layer down, a key not found
	exitUsage   = 2 // bad flags or arguments
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is an error in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// silentError ends the command with exit code 1 after the verb has said
// why itself (ping's table, get's "not found").
type silentError struct{}

func (silentError) Error() string { return "failed" }

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// started is set once flags and arguments were accepted: an error
	// before that is a usage error.
	started := false
	root := newRoot()
	root.PersistentPreRun = func(*cobra.Command, []string) { started = true }
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var usage usageError
	if !started || errors.As(err, &usage) {
		fmt.Fprintf(stderr, "layercache: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	}
	if !errors.As(err, new(silentError)) {
		fmt.Fprintf(stderr, "layercache: %v\n", err)
	}
	return exitFailure
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "layercache",
		Short: "Demo, benchmarks and administration of layercache stacks",
		Long: `layercache shows what the layercache library does (demo), measures it (bench),
and lets operators look at and act on the cache stack an application runs,
described by the application's own configuration file (--config, default
layercache.yaml, with the same LAYERCACHE_* environment overrides).

Exit codes: 0 success, 1 failure, 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("a verb is required")
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newDemoCmd(),
		newBenchCmd(),
		newBenchWorkerCmd(),
		newStatsCmd(),
		newGetCmd(),
		newDelCmd(),
		newInvalidateCmd(),
		newKeysCmd(),
		newInspectCmd(),
		newPingCmd(),
	)
	return root
}
