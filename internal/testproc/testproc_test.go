package testproc

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestProcess_PauseKillAndOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	p, err := Start(dir, out, "sh", "-c", "echo started; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for FileSize(out) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the shell has written its line
	}
	if err := p.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill of a paused process: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Kill returned before the process was reaped")
	}
	if got := TailSince(out, 0); got != "started" {
		t.Fatalf("output %q", got)
	}
	if got := TailSince(filepath.Join(dir, "missing"), 0); got != "(not written)" {
		t.Fatalf("tail of a missing file: %q", got)
	}
	if FileSize(out) != int64(len("started\n")) {
		t.Fatalf("FileSize = %d", FileSize(out))
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
