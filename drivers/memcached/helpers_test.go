package memcached

import (
	"testing"
	"time"

	"github.com/layercache/layercache/internal/memcachedtest"
)

// largeItems is the memcached argument that lets a server hold the
// conformance suite's 1 MiB values with their envelope.
var largeItems = []string{"-I", "2m"}

// testPrefix gives each subtest its own key space on a shared server, so
// that the suite's "fresh, empty layer" holds without a server per subtest.
// Subtest names hold spaces and slashes; the prefix must be a legal key.
func testPrefix(t testing.TB) string {
	b := []byte(t.Name())
	for i, c := range b {
		if c <= ' ' || c == 0x7f {
			b[i] = '_'
		}
	}
	if len(b) > maxPrefixLen-1 {
		b = b[len(b)-(maxPrefixLen-1):]
	}
	return string(b) + ":"
}

// roomyTimeout is the layer timeout of tests that are not about timeouts:
// the machines that run them are shared and busy, and a slow moment must
// not fail a test about something else.
const roomyTimeout = 2 * time.Second

// newLayerT builds a layer with New and closes it in t.Cleanup. A zero
// Timeout becomes roomyTimeout.
func newLayerT(t testing.TB, o Options) *Layer {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = roomyTimeout
	}
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// startServer starts a memcached that holds items of up to 2 MiB.
func startServer(t testing.TB) *memcachedtest.Server {
	t.Helper()
	return memcachedtest.Start(t, largeItems...)
}
