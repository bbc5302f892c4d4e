package httpcache

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
)

// recorder is the ResponseWriter a handler writes to while its response may
// still be stored. It keeps the response back until the handler returns,
// except when the handler flushes, hijacks the connection, or writes more
// than the body limit: then it passes through, sending what it kept and
// everything after straight to the client, and the response is not stored.
type recorder struct {
	w       http.ResponseWriter // the client's
	header  http.Header
	status  int // 0 until the handler sets it or writes
	body    []byte
	maxBody int
	// onPass is called once, when the recorder starts passing through.
	onPass func()
	// passed says the response went to the client, or is going; hijacked
	// says the connection was taken over.
	passed, hijacked bool
}

func newRecorder(w http.ResponseWriter, maxBody int, onPass func()) *recorder {
	return &recorder{w: w, header: make(http.Header), maxBody: maxBody, onPass: onPass}
}

// Header returns the header map of the response being recorded; once the
// recorder passes through, the client's.
func (rec *recorder) Header() http.Header {
	if rec.passed {
		return rec.w.Header()
	}
	return rec.header
}

// WriteHeader records the status. Informational (1xx) responses are
// dropped: they are hints that a replayed response can do without.
func (rec *recorder) WriteHeader(code int) {
	if rec.passed {
		rec.w.WriteHeader(code)
		return
	}
	if rec.status != 0 || code < 200 {
		return
	}
	rec.status = code
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.passed {
		return rec.w.Write(p)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if !bodyAllowed(rec.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if len(rec.body)+len(p) > rec.maxBody {
		if err := rec.passThrough(); err != nil {
			return 0, err
		}
		return rec.w.Write(p)
	}
	rec.body = append(rec.body, p...)
	return len(p), nil
}

// WriteString lets io.WriteString skip a conversion.
func (rec *recorder) WriteString(s string) (int, error) {
	if rec.passed {
		return io.WriteString(rec.w, s)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if !bodyAllowed(rec.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if len(rec.body)+len(s) > rec.maxBody {
		if err := rec.passThrough(); err != nil {
			return 0, err
		}
		return io.WriteString(rec.w, s)
	}
	rec.body = append(rec.body, s...)
	return len(s), nil
}

// Flush sends what the handler wrote so far: a handler that flushes is
// streaming, so the response passes through.
func (rec *recorder) Flush() {
	_ = rec.FlushError()
}

// FlushError is Flush for http.ResponseController, with the client's
// writer's error.
func (rec *recorder) FlushError() error {
	if !rec.passed {
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if err := rec.passThrough(); err != nil {
			return err
		}
	}
	return http.NewResponseController(rec.w).Flush()
}

// Hijack hands the connection to the handler, if nothing was written yet.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if len(rec.body) > 0 && !rec.passed {
		return nil, nil, errors.New("httpcache: cannot hijack a connection after the body was written")
	}
	if !rec.passed {
		rec.passed, rec.hijacked = true, true
		if rec.onPass != nil {
			rec.onPass()
		}
	}
	return http.NewResponseController(rec.w).Hijack()
}

// Unwrap returns the client's ResponseWriter, for http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// passThrough sends the recorded status, headers and body to the client and
// makes the recorder a plain pass-through from now on.
func (rec *recorder) passThrough() error {
	rec.passed = true
	if rec.onPass != nil {
		rec.onPass()
	}
	dst := rec.w.Header()
	for k, v := range rec.header {
		dst[k] = v
	}
	setXCache(dst, missValue)
	rec.w.WriteHeader(rec.status)
	if len(rec.body) == 0 {
		return nil
	}
	_, err := rec.w.Write(rec.body)
	rec.body = nil
	return err
}

// finish settles the status of a handler that wrote nothing: an empty 200,
// as net/http would send.
func (rec *recorder) finish() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}

var (
	_ http.Flusher  = (*recorder)(nil)
	_ http.Hijacker = (*recorder)(nil)
)
