package httpcache

import (
	"net/http"
	"strings"
)

// The X-Cache values, one slice each, shared by every response: setting one
// allocates nothing. A header value slice is only ever replaced (Set),
// appended to (Add: they are capped at their length, so that copies) or
// deleted, never written in place, by net/http and by middleware.
var (
	hitValue    = []string{"HIT"}
	missValue   = []string{"MISS"}
	staleValue  = []string{"STALE"}
	bypassValue = []string{"BYPASS"}
)

func setXCache(h http.Header, v []string) { h["X-Cache"] = v[:1:1] }

// notModifiedHeaders are the headers a 304 carries (RFC 9110 §15.4.5),
// besides Date, which the server adds.
var notModifiedHeaders = map[string]bool{
	"Cache-Control":    true,
	"Content-Location": true,
	"Etag":             true,
	"Expires":          true,
	"Last-Modified":    true,
	"Vary":             true,
}

func notFor304(name string) bool { return !notModifiedHeaders[name] }

// writeStored sends a stored response, or 304 when r is conditional and its
// conditions hold. It writes nothing and returns errCorrupt if the record's
// headers are corrupt.
func writeStored(w http.ResponseWriter, r *http.Request, conditional bool, resp *response, xcache []string) error {
	h := w.Header()
	if conditional && resp.status == http.StatusOK {
		etag, lastModified, err := resp.validators()
		if err != nil {
			return err
		}
		if notModified(r, etag, lastModified) {
			if err := resp.writeHeaders(h, notFor304, xcache); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	if err := resp.writeHeaders(h, nil, xcache); err != nil {
		return err
	}
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		_, _ = w.Write(resp.body)
	}
	return nil
}

// writeRecorded sends the response a handler wrote to rec for this very
// request. When conditional is set (the response is a cacheable one),
// r's conditions are answered as for a stored response.
func writeRecorded(w http.ResponseWriter, r *http.Request, rec *recorder, xcache []string, conditional bool) {
	h := w.Header()
	if conditional && rec.status == http.StatusOK &&
		notModified(r, firstValue(rec.header, "Etag"), firstValue(rec.header, "Last-Modified")) {
		for k, v := range rec.header {
			if notModifiedHeaders[k] {
				h[k] = v
			}
		}
		setXCache(h, xcache)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	for k, v := range rec.header {
		h[k] = v
	}
	setXCache(h, xcache)
	w.WriteHeader(rec.status)
	if len(rec.body) > 0 {
		_, _ = w.Write(rec.body)
	}
}

func firstValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// notModified evaluates If-None-Match, or If-Modified-Since when there is
// none (RFC 9110 §13.2.2), against a response's validators.
func notModified(r *http.Request, etag, lastModified string) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		return len(etag) > 0 && etagListMatches(inm, etag)
	}
	ims := r.Header["If-Modified-Since"]
	if len(ims) == 0 || len(lastModified) == 0 {
		return false
	}
	since, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	modified, err := http.ParseTime(lastModified)
	if err != nil {
		return false
	}
	return !modified.After(since)
}

// etagListMatches reports whether an If-None-Match list names etag, by weak
// comparison (RFC 9110 §8.8.3.2), or is "*".
func etagListMatches(values []string, etag string) bool {
	want := opaqueTag(etag)
	for _, v := range values {
		for {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			tag, rest, ok := scanETag(v)
			if !ok {
				break
			}
			if opaqueTag(tag) == want {
				return true
			}
			v = rest
		}
	}
	return false
}

// scanETag reads one entity-tag at the start of s.
func scanETag(s string) (tag, rest string, ok bool) {
	start := s
	if strings.HasPrefix(s, "W/") {
		s = s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	n := len(start) - len(s) + end + 2
	return start[:n], start[n:], true
}

// opaqueTag drops the weakness indicator, for weak comparison.
func opaqueTag(tag string) string {
	return strings.TrimPrefix(tag, "W/")
}
