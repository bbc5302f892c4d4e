package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The program must end by itself without -serve, and show spans, metrics
// and statistics.
func TestRun_ShowsSpansMetricsAndStats(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, "127.0.0.1:0", false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"Name":"layercache.get"`,
		`"Name":"layercache.load"`,
		`"Name":"db.query products"`,
		`cache_requests_total{cache_layer="memory",cache_name="products",cache_operation="get",cache_result="hit"`,
		`cache_loads_total{cache_name="products",cache_result="loaded"`,
		`"Loads": 4`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
