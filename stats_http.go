package layercache

import (
	"encoding/json"
	"net/http"
)

// StatsHandler returns an http.Handler that serves c's [Stats] as JSON, for
// a debug or admin endpoint:
//
//	mux.Handle("GET /debug/cache", layercache.StatsHandler(c))
func StatsHandler(c *Cache) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.Stats())
	})
}

// MarshalText names the state in JSON and logs.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
