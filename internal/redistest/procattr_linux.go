package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttr asks the kernel to kill redis-server if the test binary dies
// without running its cleanups (a panic in another goroutine, go test's
// -timeout, a SIGKILL), so crashed test runs do not leave servers behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
