// Package prefix puts a prefix before many keys at once, for the batch
// operations that address a key space under a prefix.
package prefix

import "unsafe"

// All returns prefix+k for each of keys, or keys itself when prefix is
// empty. The results share one buffer, written once and never changed
// after, so n keys cost two allocations rather than n.
func All(prefix string, keys []string) []string {
	if prefix == "" {
		return keys
	}
	size := 0
	for _, k := range keys {
		size += len(prefix) + len(k)
	}
	buf := make([]byte, 0, size) // never grows, so the strings stay put
	out := make([]string, len(keys))
	for i, k := range keys {
		at := len(buf)
		buf = append(append(buf, prefix...), k...)
		out[i] = unsafe.String(unsafe.SliceData(buf[at:]), len(buf)-at)
	}
	return out
}
