package gincache

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// responseWriter is the gin.ResponseWriter handlers write to while the
// cache records their response. Like Gin's own, it holds the status back
// until the first write (handlers set headers after c.Status), and counts
// what was written.
type responseWriter struct {
	w      http.ResponseWriter // the recorder
	status int
	size   int // -1 until the header is written
}

func newResponseWriter(w http.ResponseWriter) *responseWriter {
	return &responseWriter{w: w, status: http.StatusOK, size: -1}
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if code > 0 && !rw.Written() {
		rw.status = code
	}
}

func (rw *responseWriter) WriteHeaderNow() {
	if !rw.Written() {
		rw.size = 0
		rw.w.WriteHeader(rw.status)
	}
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	rw.WriteHeaderNow()
	n, err := rw.w.Write(p)
	rw.size += n
	return n, err
}

func (rw *responseWriter) WriteString(s string) (int, error) {
	rw.WriteHeaderNow()
	n, err := io.WriteString(rw.w, s)
	rw.size += n
	return n, err
}

func (rw *responseWriter) Status() int   { return rw.status }
func (rw *responseWriter) Size() int     { return rw.size }
func (rw *responseWriter) Written() bool { return rw.size != -1 }

// Flush streams: the response passes through to the client and is not
// stored.
func (rw *responseWriter) Flush() {
	rw.WriteHeaderNow()
	_ = http.NewResponseController(rw.w).Flush()
}

func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if rw.size < 0 {
		rw.size = 0
	}
	return http.NewResponseController(rw.w).Hijack()
}

// CloseNotify is part of gin.ResponseWriter; it reports the client's
// connection closing as Gin's writer does, when the server supports it.
func (rw *responseWriter) CloseNotify() <-chan bool {
	for w := rw.w; ; {
		switch t := w.(type) {
		case http.CloseNotifier:
			return t.CloseNotify()
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return make(chan bool)
		}
	}
}

// Pusher returns nil: a pushed resource would not be part of the stored
// response.
func (rw *responseWriter) Pusher() http.Pusher { return nil }

// Unwrap returns the recorder, for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

var _ gin.ResponseWriter = (*responseWriter)(nil)
