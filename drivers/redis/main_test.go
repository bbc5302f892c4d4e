package redis

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// layer, client and server a test opens must be closed by its Cleanup.
// nutsdb v1.0.4, under the disk layer of the example configuration, never
// stops the goroutine of its unused asynchronous write path.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nutsdb/nutsdb.(*DB).doWrites"))
}
