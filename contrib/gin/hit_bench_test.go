package gincache_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so that
// BenchmarkHit measures the handler chain alone.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }

// BenchmarkHit is the CPU cost of one request to the cases of BenchmarkLoad
// (but the slow one) within the process, without a network: the cost the
// cache adds to a bare handler, and gin-cache's for comparison.
//
//	go test -run '^$' -bench 'Hit$' -count 6 ./contrib/gin
func BenchmarkHit(b *testing.B) {
	for _, tc := range loadCases() {
		if tc.slow {
			continue
		}
		b.Run("case="+tc.name, func(b *testing.B) {
			h := tc.handler(b)
			r := httptest.NewRequest("GET", "/item", nil)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for range b.N {
				w.h = make(http.Header) // as net/http gives each response
				h.ServeHTTP(w, r)
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			b.StopTimer()
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
			tc.check(b)
		})
	}
}
