//go:build unix

package redis

import (
	"syscall"
	"testing"
)

// favourRedis raises the scheduling priority of the servers' main threads,
// where Redis runs commands, for tests that time commands with the slow
// log: on a shared host, a server thread left waiting for a CPU in the
// middle of a command makes a short command look slow. It is best effort;
// without the right to raise priorities the test runs as it is.
func favourRedis(t testing.TB, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, -10); err != nil {
			t.Logf("cannot raise the priority of redis-server %d: %v", pid, err)
			return
		}
	}
}
