package config

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// layer0 parses doc, which must define one layer, and returns that layer.
func layer0(t *testing.T, doc string, env ...string) *Block {
	t.Helper()
	return mustParse(t, doc, env...).Layers[0]
}

type sharedOpts struct {
	TTL time.Duration `yaml:"ttl"`
}

type kitchenSink struct {
	sharedOpts                   // embedded: its keys are the block's
	Inline     tlsOpts           `yaml:",inline"`
	Name       string            `yaml:"name"`
	Count      int               `yaml:"count"`
	Small      int8              `yaml:"small"`
	Big        int64             `yaml:"big"`
	Unsigned   uint32            `yaml:"unsigned"`
	Ratio      float64           `yaml:"ratio"`
	On         bool              `yaml:"on"`
	Addrs      []string          `yaml:"addrs"`
	Ports      []int             `yaml:"ports"`
	Labels     map[string]string `yaml:"labels"`
	Extra      map[string]any    `yaml:"extra"`
	Nested     *tlsOpts          `yaml:"nested"`
	Level      slog.Level        `yaml:"level"`
	Timeout    *time.Duration    `yaml:"timeout"`
	Untagged   string
	hidden     string
}

func TestDecode_EveryKind(t *testing.T) {
	t.Parallel()
	b := layer0(t, `layers:
  - driver: sink
    ttl: 1m30s
    ca_file: /ca.pem
    insecure: true
    name: cache
    count: 64MiB
    small: 100
    big: 1.5GB
    unsigned: 4KiB
    ratio: 2
    on: false
    addrs: [a:1, b:2]
    ports: [1, 2]
    labels: {app: web, "team.name": core}
    extra: {n: 1, s: x, l: [1]}
    nested: {ca_file: /n.pem}
    level: warn
    timeout: 0
`)
	var got kitchenSink
	if err := b.Decode(&got); err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	want := kitchenSink{
		sharedOpts: sharedOpts{TTL: 90 * time.Second},
		Inline:     tlsOpts{CAFile: "/ca.pem", Insecure: true},
		Name:       "cache",
		Count:      64 << 20,
		Small:      100,
		Big:        1_500_000_000,
		Unsigned:   4096,
		Ratio:      2,
		Addrs:      []string{"a:1", "b:2"},
		Ports:      []int{1, 2},
		Labels:     map[string]string{"app": "web", "team.name": "core"},
		Extra:      map[string]any{"n": 1, "s": "x", "l": []any{1}},
		Nested:     &tlsOpts{CAFile: "/n.pem"},
		Level:      slog.LevelWarn,
		Timeout:    &zero,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecode_DriverKeyIsNotPassed(t *testing.T) {
	t.Parallel()
	type withDriver struct {
		Driver string `yaml:"driver"`
	}
	b := layer0(t, "layers: [{driver: memory}]")
	var v withDriver
	if err := b.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Driver != "" {
		t.Errorf("driver key reached the options: %q", v.Driver)
	}
}

func TestDecode_LeftOutKeysKeepPresetValues(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: memory, ttl: 1m}]")
	v := memoryOpts{TTL: time.Hour, MaxSize: 10000}
	if err := b.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v != (memoryOpts{TTL: time.Minute, MaxSize: 10000}) {
		t.Errorf("got %+v", v)
	}
}

func TestDecode_DoesNotChangeTheBlock(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: redis, addrs: [a, b]}]", "LAYERCACHE_LAYERS__0__TTL=5s")
	for range 2 {
		var r redisOpts
		if err := b.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.TTL != 5*time.Second || len(r.Addrs) != 2 {
			t.Fatalf("got %+v", r)
		}
		r.Addrs[0] = "changed"
	}
}

func TestDecode_UnknownKeys(t *testing.T) {
	t.Parallel()
	b := layer0(t, `layers:
  - driver: redis
    url: redis://x
    tiemout: 1s
    tls:
      ca_fle: /ca.pem
    Client: x
    TTL: 1m
    zzzzzzzz: 1
`)
	var r redisOpts
	err := b.Decode(&r)
	wantErr(t, err,
		`test.yaml:4: layers[0].tiemout: unknown key (did you mean "timeout"?)`,
		`test.yaml:6: layers[0].tls.ca_fle: unknown key (did you mean "ca_file"?)`,
		// Untagged fields take no key, whatever the spelling.
		`test.yaml:7: layers[0].Client: unknown key`,
		// Keys are matched exactly.
		`test.yaml:8: layers[0].TTL: unknown key (did you mean "ttl"?)`,
		`test.yaml:9: layers[0].zzzzzzzz: unknown key (known keys: addrs, db, lease, password, timeout, tls, ttl, url)`,
	)
	if n := strings.Count(err.Error(), "\n") + 1; n != 5 {
		t.Errorf("%d problems reported, want 5 (no duplicates from the decoder): %v", n, err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Source != "test.yaml" || !strings.HasPrefix(ce.Path, "layers[0].") {
		t.Errorf("not an *Error with source and path: %#v", err)
	}
}

func TestDecode_DashKeyIsUnknown(t *testing.T) {
	t.Parallel()
	type withLogger struct {
		TTL    time.Duration `yaml:"ttl"`
		Logger *slog.Logger  `yaml:"-"`
	}
	b := layer0(t, "layers: [{driver: memory, '-': x}]")
	var v withLogger
	err := b.Decode(&v)
	wantErr(t, err, "layers[0].-: unknown key")
	if n := strings.Count(err.Error(), "\n") + 1; n != 1 || v.Logger != nil {
		t.Errorf("%d problems, logger %v: %v", n, v.Logger, err)
	}
}

func TestDecode_UnknownKeysAndWrongTypesTogether(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: memory, ttl: [1, 2], max_sise: 3}]")
	var m memoryOpts
	wantErr(t, b.Decode(&m),
		"layers[0].max_sise: unknown key",
		"layers[0].ttl: expected a duration",
	)
}

func TestDecode_WrongTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, want string }{
		{`ttl: [1, 2]`, `layers[0].ttl: expected a duration such as "100ms" or "1h30m", got a list`},
		{`ttl: 5`, `layers[0].ttl: a duration needs a unit`},
		{`ttl: "5 minutes"`, `layers[0].ttl: invalid duration "5 minutes"`},
		{`count: lots`, `layers[0].count: expected a whole number or a size such as "64MiB", "1GB" or "512KiB", got "lots"`},
		{`count: 64M`, `layers[0].count: unknown unit "M" in "64M"`},
		{`count: true`, `layers[0].count: expected a whole number or a size such as "64MiB", got a boolean (true)`},
		{`count: 1.5`, `layers[0].count: expected a whole number, got 1.5`},
		{`count: 1.5B`, `layers[0].count: invalid size "1.5B": not a whole number of bytes`},
		{`small: 1KiB`, `layers[0].small: 1024 is too large for this key`},
		{`unsigned: 5GiB`, `layers[0].unsigned: 5368709120 is too large for this key`},
		{`big: 99999999999999999999`, `layers[0].big: 1e+20 is too large for this key`},
		{`ratio: "0.5"`, `layers[0].ratio: expected a number, got a string ("0.5")`},
		{`ratio: .inf`, `layers[0].ratio: expected a finite number`},
		{`on: "true"`, `layers[0].on: expected true or false, got a string ("true")`},
		{`name: 12345`, `layers[0].name: expected a string, got a number (quote it to make it a string)`},
		{`name: 2024-01-02`, `layers[0].name: expected a string, got a timestamp`},
		{`name: [a]`, `layers[0].name: expected a string, got a list`},
		{`addrs: a:1`, `layers[0].addrs: expected a list, got a string`},
		{`ports: [1, x]`, `layers[0].ports[1]: expected a whole number or a size`},
		{`labels: x`, `layers[0].labels: expected a block of keys, got a string`},
		{`labels: {a: 1}`, `layers[0].labels.a: expected a string, got a number`},
		{`nested: [1]`, `layers[0].nested: expected a block of keys, got a list`},
		{`level: loud`, `layers[0].level: invalid value "loud"`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			b := layer0(t, "layers:\n  - driver: sink\n    "+tc.value+"\n")
			var v kitchenSink
			wantErr(t, b.Decode(&v), "test.yaml:3: "+tc.want)
		})
	}
}

func TestDecode_SecretsAreNotEchoed(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: redis, password: 8675309}]")
	var r redisOpts
	err := b.Decode(&r)
	wantErr(t, err, "layers[0].password: expected a string")
	if strings.Contains(err.Error(), "8675309") {
		t.Errorf("error shows the value: %v", err)
	}
}

func TestDecode_NegativeValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, want string }{
		{`ttl: -1s`, `layers[0].ttl: must not be negative, got -1s`},
		{`ttl: -5`, `layers[0].ttl: must not be negative, got -5`},
		{`count: -1`, `layers[0].count: must not be negative, got -1`},
		{`count: -64MiB`, `layers[0].count: must not be negative, got -64MiB`},
		{`big: -1.0`, `layers[0].big: must not be negative, got -1`},
		{`unsigned: -2`, `layers[0].unsigned: must not be negative, got -2`},
		{`timeout: -1ms`, `layers[0].timeout: must not be negative, got -1ms`},
		{`nested: {}` + "\n    ports: [1, -2]", `layers[0].ports[1]: must not be negative, got -2`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			b := layer0(t, "layers:\n  - driver: sink\n    "+tc.value+"\n")
			var v kitchenSink
			wantErr(t, b.Decode(&v), tc.want)
		})
	}
}

func TestDecode_NeedsAPointer(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: memory, ttl: 1m}]")
	var m memoryOpts
	var nilPtr *memoryOpts
	for _, v := range []any{nil, m, nilPtr} {
		wantErr(t, b.Decode(v), "layers[0]: Decode needs a non-nil pointer")
	}
}

func TestDecode_IntoAMap(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: memory, ttl: 1m}]", "LAYERCACHE_LAYERS__0__EXTRA=x")
	var m map[string]any
	if err := b.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"ttl": "1m", "extra": "x"}; !reflect.DeepEqual(m, want) {
		t.Errorf("got %#v, want %#v", m, want)
	}
}

func TestBlock_PathsOfBusAndSingleflight(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "layers: [{driver: memory}]\nbus: {driver: redis, urll: x}\nsingleflight: {driver: redis, lese: 1s}\n")
	var r redisOpts
	wantErr(t, c.Bus.Decode(&r), `test.yaml:2: bus.urll: unknown key (did you mean "url"?)`)
	wantErr(t, c.Singleflight.Decode(&r), `test.yaml:3: singleflight.lese: unknown key (did you mean "lease"?)`)
}

func TestDecode_ConcurrentDecodesAgree(t *testing.T) {
	t.Parallel()
	b := layer0(t, "layers: [{driver: redis, addrs: [a, b], tls: {ca_file: x}}]", "LAYERCACHE_LAYERS__0__TTL=5s")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			var r redisOpts
			if err := b.Decode(&r); err != nil {
				errs <- err
				return
			}
			if r.TTL != 5*time.Second || len(r.Addrs) != 2 || r.TLS == nil || r.TLS.CAFile != "x" {
				errs <- fmt.Errorf("got %+v", r)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
