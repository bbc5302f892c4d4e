//go:build unix

package gincache_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time, user and system, the process has used so far.
// Benchmarks on a shared machine report it per request besides wall-clock
// rates: other processes take wall-clock time, not this process's CPU.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
