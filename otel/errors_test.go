package layercacheotel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"testing"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/driver/envelope"
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestErrorType_ClassifiesWithFewValues(t *testing.T) {
	inLayer := func(err error) error { return &layercache.LayerError{Op: "get", Layer: "redis", Err: err} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"breaker open", inLayer(layercache.ErrLayerUnavailable), "layer_unavailable"},
		{"deadline", inLayer(fmt.Errorf("layercache/redis: get: %w", context.DeadlineExceeded)), "timeout"},
		{"socket timeout", inLayer(&net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}), "timeout"},
		{"canceled", context.Canceled, "canceled"},
		{"corrupt", inLayer(fmt.Errorf("decode: %w", envelope.ErrCorrupt)), "corrupt"},
		{"type mismatch", fmt.Errorf("%w: key %q", layercache.ErrTypeMismatch, "k"), "type_mismatch"},
		{"closed", layercache.ErrClosed, "closed"},
		{"panic", &layercache.PanicError{Value: "boom"}, "panic"},
		{"typed cause under wrappers", inLayer(fmt.Errorf("layercache/redis: get: %w", refused)), "*net.OpError"},
		{"first of joined", errors.Join(inLayer(&fs.PathError{Op: "open", Err: fs.ErrNotExist}), errors.New("x")), "*fs.PathError"},
		{"plain message", errors.New("db down"), "_OTHER"},
		{"wrapped message", fmt.Errorf("load user: %w", errors.New("db down")), "_OTHER"},
	} {
		if got := errorType(c.err); got != c.want {
			t.Errorf("%s: errorType(%v) = %q, want %q", c.name, c.err, got, c.want)
		}
	}
}

func TestMemo_StopsGrowingAtItsBound(t *testing.T) {
	built := 0
	m := memo[int, int]{build: func(k int) *int { built++; return &k }}
	for k := range maxMemo + 10 {
		if v := m.get(k); *v != k {
			t.Fatalf("get(%d) = %d", k, *v)
		}
	}
	if n := len(*m.m.Load()); n != maxMemo {
		t.Errorf("memo holds %d entries, want %d", n, maxMemo)
	}
	built = 0
	m.get(1)
	m.get(maxMemo + 5)
	if built != 1 {
		t.Errorf("built %d values for one kept and one unkept key, want 1", built)
	}
}
