package config

import "testing"

// FuzzParse checks that no document, however malformed, makes parsing or
// decoding panic, and that every failure is reported as an error.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullDoc,
		envDoc,
		"layers: [{driver: x, ttl: 1m, max_size: 1GiB}]",
		"x-a: &a {driver: r}\nlayers: [*a, {<<: *a, url: u}]",
		"layers:\n  - driver: memory\n    ttl: [1, {a: b}]\n",
		"- a\n- b\n",
		"a: &a [*a]\n",
		"layers: [{driver: x, labels: {1: 2, ~: 3}}]",
		"layers: [{driver: x, big: 99999999999999999999, f: .nan}]",
	} {
		f.Add(seed, "LAYERCACHE_LAYERS__0__TTL=5s")
	}
	f.Fuzz(func(t *testing.T, doc, env string) {
		c, err := parse([]byte(doc), "fuzz.yaml", func() []string { return []string{env} })
		if err != nil {
			return
		}
		for _, b := range c.Layers {
			var k kitchenSink
			_ = b.Decode(&k)
			var m map[string]any
			_ = b.Decode(&m)
		}
	})
}
