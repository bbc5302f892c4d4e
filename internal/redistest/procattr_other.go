//go:build !linux

package redistest

import "os/exec"

// setProcAttr does nothing where the parent-death signal is not available;
// t.Cleanup still stops every server a test starts.
func setProcAttr(cmd *exec.Cmd) {}
