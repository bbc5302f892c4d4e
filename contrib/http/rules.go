package httpcache

import (
	"net/http"
	"slices"
	"strings"
)

// action is what the middleware does with a request.
type action uint8

const (
	// lookUp: answer from the cache, or run the handler and store.
	lookUp action = iota
	// bypass: run the handler for this request alone (X-Cache: BYPASS).
	bypass
	// revalidate: run the handler and store its response, without
	// reading the cache (the client said no-cache).
	revalidate
)

// classify decides what to do with r, and reports whether r is a
// conditional request (If-None-Match, If-Modified-Since). It reads the
// request's headers in one pass rather than looking each of them up, which
// costs less for the few headers most requests carry.
func (s *settings) classify(r *http.Request) (act action, conditional bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return bypass, false
	}
	var cacheControl, pragma []string
	for name, v := range r.Header {
		if len(v) == 0 {
			continue
		}
		switch name {
		case "Range", "Upgrade":
			// A part of a representation, or a switch of protocol:
			// neither is a response to replay.
			return bypass, false
		case "If-Match", "If-Unmodified-Since":
			// Preconditions for the handler to evaluate, not the cache.
			return bypass, false
		case "Authorization", "Cookie":
			if !s.identity {
				return bypass, false // the response may be this caller's alone
			}
		case "If-None-Match", "If-Modified-Since":
			conditional = true
		case "Cache-Control":
			cacheControl = v
		case "Pragma":
			pragma = v
		}
	}
	switch {
	case cacheControl != nil && hasDirective(cacheControl, "no-store"):
		return bypass, false
	case s.ignoreNoCache:
	case cacheControl != nil:
		// RFC 9111 §5.2.1.4; Pragma counts only without Cache-Control
		// (§5.4).
		if hasDirective(cacheControl, "no-cache") {
			return revalidate, conditional
		}
	case pragma != nil && hasDirective(pragma, "no-cache"):
		return revalidate, conditional
	}
	return lookUp, conditional
}

// why a recorded response is not stored; the zero value means it is.
type refusal uint8

const (
	storable refusal = iota
	refuseStatus
	refuseServerError // a 5xx, which stale-if-error may answer instead
	refuseCookie
	refuseCacheControl
	refuseVaryAll
	refuseVaryChanged // a variant whose Vary differs from the route's record
)

// refuse says whether a response with status and header h (canonical keys)
// may be stored.
func (s *settings) refuse(status int, h http.Header) refusal {
	switch {
	case !s.statuses[status] && status >= 500:
		return refuseServerError
	case !s.statuses[status]:
		return refuseStatus
	case len(h["Set-Cookie"]) > 0:
		return refuseCookie
	}
	if cc := h["Cache-Control"]; len(cc) > 0 &&
		(hasDirective(cc, "private") || hasDirective(cc, "no-store") || hasDirective(cc, "no-cache")) {
		return refuseCacheControl
	}
	if slices.Contains(varyNames(h), "*") {
		return refuseVaryAll
	}
	return storable
}

// hasDirective reports whether a Cache-Control (or Pragma) header names
// directive, with or without an argument (private="Set-Cookie" still
// makes the response private).
func hasDirective(values []string, directive string) bool {
	for _, v := range values {
		for v != "" {
			var d string
			d, v, _ = strings.Cut(v, ",")
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(name), directive) {
				return true
			}
		}
	}
	return false
}

// varyNames returns the request headers a response (canonical keys) varies
// with, canonical, sorted and without duplicates; "*" when it varies with
// anything.
func varyNames(h http.Header) []string {
	var names []string
	for _, v := range h["Vary"] {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f != "*" {
				f = http.CanonicalHeaderKey(f)
			}
			names = append(names, f)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
