package memcached

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// layer, cache and server a test opens must be closed by its Cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
