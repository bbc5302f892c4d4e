// Package testproc runs the server processes that the test harnesses
// (internal/redistest, internal/memcachedtest) start: their output goes to
// a file, they are reaped when they exit, the kernel kills them if the test
// binary dies first, and they can be stopped and continued by signal.
package testproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ExitTimeout is how long Kill waits for a killed process to be reaped.
const ExitTimeout = 30 * time.Second

// Process is one run of a server.
type Process struct {
	cmd  *exec.Cmd
	out  *os.File
	done chan struct{} // closed once cmd.Wait has reaped the process
}

// Start runs name with args in dir, its output appended to outPath.
func Start(dir, outPath, name string, args ...string) (*Process, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = out // an *os.File is handed to the child directly: no copy goroutine
	cmd.Stderr = out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap, so a killed server never lingers as a zombie
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// State describes how the process exited; valid once Done is closed.
func (p *Process) State() *os.ProcessState { return p.cmd.ProcessState }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Pause stops the process with SIGSTOP and waits until every one of its
// threads has stopped: kill(SIGSTOP) returns before the threads of a busy,
// multi-threaded server have all stopped, and one still running could
// answer a request sent just after.
func (p *Process) Pause() error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	if !waitStopped(p.Pid(), ExitTimeout) {
		return fmt.Errorf("pid %d not stopped %v after SIGSTOP", p.Pid(), ExitTimeout)
	}
	return nil
}

// Kill sends SIGCONT then SIGKILL, waits for the process to be reaped and
// closes its output file. SIGCONT comes first so that a paused process is
// never left stopped, should the kill be refused for any reason.
func (p *Process) Kill() error {
	defer p.out.Close()
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(ExitTimeout):
		return fmt.Errorf("%s pid %d did not exit %v after SIGKILL", p.cmd.Path, p.Pid(), ExitTimeout)
	}
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("no free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FileSize is the size of the file at path, 0 when it cannot be read.
func FileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TailSince returns the last lines written to path after offset from, for
// the message of a server that did not come up.
func TailSince(path string, from int64) string {
	const maxBytes = 4096
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "(not written)"
	}
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if from > int64(len(b)) {
		from = 0
	}
	b = b[from:]
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	return s
}

// ErrPortInUse marks a launch that failed only because another process
// took the port between probing it and the server binding it.
var ErrPortInUse = errors.New("port already in use")

// Relaunch calls launch until it succeeds or fails for another reason than
// ErrPortInUse, a few times at most: a port just released by a killed
// server can be held for a moment by a racing connect or listener.
func Relaunch(launch func() error) error {
	var err error
	for range 5 {
		if err = launch(); err == nil || !errors.Is(err, ErrPortInUse) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}
