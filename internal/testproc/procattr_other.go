//go:build !linux

package testproc

import (
	"os/exec"
	"time"
)

// setProcAttr does nothing where the parent-death signal is not available;
// t.Cleanup still stops every server a test starts.
func setProcAttr(cmd *exec.Cmd) {}

// waitStopped cannot look at thread states here; a short sleep covers the
// delivery of SIGSTOP to every thread in practice.
func waitStopped(pid int, timeout time.Duration) bool {
	time.Sleep(min(timeout, 50*time.Millisecond))
	return true
}
