package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullDoc is the document of the package documentation.
const fullDoc = `namespace: myapp
layers:
  - driver: memory
    ttl: 1m
    max_size: 10000
  - driver: redis
    url: redis://localhost:6379/0
    ttl: 1h
    timeout: 100ms
  - driver: disk
    dir: ./var/cache
    ttl: 24h
bus: { driver: redis, url: redis://localhost:6379/0 }
singleflight: { driver: redis, url: redis://localhost:6379/0, lease: 5s }
degradation: { retry_after: 20s, timeout: 250ms, failure_threshold: 3, start_degraded: true }
defaults: { ttl: 2m, negative_ttl: 10s, stale_while_revalidate: 1s, stale_if_error: 1h, jitter: 0.2 }
`

// parseWith parses doc as "test.yaml" with env as the whole environment,
// leaving the process's alone so that tests may run in parallel.
func parseWith(doc string, env ...string) (*Config, error) {
	return parse([]byte(doc), "test.yaml", func() []string { return env })
}

func mustParse(t *testing.T, doc string, env ...string) *Config {
	t.Helper()
	c, err := parseWith(doc, env...)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

// wantErr fails unless err's message contains every one of wants.
func wantErr(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}

// Test option structs standing in for drivers' Options.

type memoryOpts struct {
	TTL     time.Duration `yaml:"ttl"`
	MaxSize int           `yaml:"max_size"`
}

type tlsOpts struct {
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure"`
}

type redisOpts struct {
	URL      string        `yaml:"url"`
	Addrs    []string      `yaml:"addrs"`
	Password string        `yaml:"password"`
	DB       int           `yaml:"db"`
	TTL      time.Duration `yaml:"ttl"`
	Timeout  time.Duration `yaml:"timeout"`
	Lease    time.Duration `yaml:"lease"`
	TLS      *tlsOpts      `yaml:"tls"`
	Client   any           // code only: no tag, no key
}

type diskOpts struct {
	Dir     string        `yaml:"dir"`
	TTL     time.Duration `yaml:"ttl"`
	MaxSize int64         `yaml:"max_size"`
}

func TestParse_FullDocument(t *testing.T) {
	t.Parallel()
	c := mustParse(t, fullDoc)

	if c.Namespace != "myapp" {
		t.Errorf("Namespace = %q", c.Namespace)
	}
	var drivers, paths []string
	for _, b := range c.Layers {
		drivers = append(drivers, b.Driver)
		paths = append(paths, b.Path())
	}
	if want := []string{"memory", "redis", "disk"}; !reflect.DeepEqual(drivers, want) {
		t.Errorf("drivers = %v, want %v", drivers, want)
	}
	if want := []string{"layers[0]", "layers[1]", "layers[2]"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
	if c.Bus == nil || c.Bus.Driver != "redis" || c.Bus.Path() != "bus" {
		t.Errorf("Bus = %+v", c.Bus)
	}
	if c.Singleflight == nil || c.Singleflight.Driver != "redis" || c.Singleflight.Path() != "singleflight" {
		t.Errorf("Singleflight = %+v", c.Singleflight)
	}
	wantDeg := Degradation{Timeout: 250 * time.Millisecond, RetryAfter: 20 * time.Second, FailureThreshold: 3, StartDegraded: true}
	if c.Degradation != wantDeg {
		t.Errorf("Degradation = %+v, want %+v", c.Degradation, wantDeg)
	}
	wantDef := Defaults{TTL: 2 * time.Minute, NegativeTTL: 10 * time.Second, StaleWhileRevalidate: time.Second, StaleIfError: time.Hour, Jitter: 0.2}
	if c.Defaults != wantDef {
		t.Errorf("Defaults = %+v, want %+v", c.Defaults, wantDef)
	}

	var m memoryOpts
	if err := c.Layers[0].Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m != (memoryOpts{TTL: time.Minute, MaxSize: 10000}) {
		t.Errorf("memory = %+v", m)
	}
	var r redisOpts
	if err := c.Layers[1].Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.URL != "redis://localhost:6379/0" || r.TTL != time.Hour || r.Timeout != 100*time.Millisecond {
		t.Errorf("redis = %+v", r)
	}
	var d diskOpts
	if err := c.Layers[2].Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d != (diskOpts{Dir: "./var/cache", TTL: 24 * time.Hour}) {
		t.Errorf("disk = %+v", d)
	}
	var sf redisOpts
	if err := c.Singleflight.Decode(&sf); err != nil {
		t.Fatal(err)
	}
	if sf.Lease != 5*time.Second {
		t.Errorf("singleflight lease = %v", sf.Lease)
	}
}

func TestParse_LeftOutKeysTakeDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "layers: [{driver: memory}]\ndegradation: {timeout: 1s}\n")
	if c.Namespace != "" || c.Bus != nil || c.Singleflight != nil {
		t.Errorf("optional parts set: %+v", c)
	}
	want := defaultDegradation
	want.Timeout = time.Second
	if c.Degradation != want {
		t.Errorf("Degradation = %+v, want %+v", c.Degradation, want)
	}
	if c.Defaults != defaultDefaults {
		t.Errorf("Defaults = %+v, want %+v", c.Defaults, defaultDefaults)
	}
	if defaultDefaults.TTL == 0 || defaultDefaults.NegativeTTL == 0 {
		t.Fatal("defaults changed: update this test")
	}
}

func TestParse_ExplicitZeroReplacesDefault(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "layers: [{driver: memory}]\ndefaults: {jitter: 0, ttl: 0, negative_ttl: 0s}\n")
	if c.Defaults.Jitter != 0 || c.Defaults.TTL != 0 || c.Defaults.NegativeTTL != 0 {
		t.Errorf("Defaults = %+v, want zeros kept", c.Defaults)
	}
}

func TestParse_NullValuesCountAsLeftOut(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "namespace:\nlayers: [{driver: memory}]\nbus:\ndegradation:\ndefaults: {ttl: null}\n")
	if c.Bus != nil || c.Degradation != defaultDegradation || c.Defaults != defaultDefaults {
		t.Errorf("got %+v", c)
	}
}

func TestLoad_ReadsFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "prod.yaml")
	if err := os.WriteFile(path, []byte(fullDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Layers) != 3 {
		t.Errorf("%d layers", len(c.Layers))
	}
}

func TestLoad_MissingFileNamesPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	wantErr(t, err, "layercache/config: "+path+": ", "no such file")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Source != path {
		t.Errorf("not an *Error with Source %q: %#v", path, err)
	}
}

func TestLoad_ErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "prod.yaml")
	if err := os.WriteFile(path, []byte("layers:\n  - driver: memory\nnamespce: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	wantErr(t, err, path+`:3: namespce: unknown key (did you mean "namespace"?)`)
}

func TestParse_InvalidYAMLGivesLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"mapping in value", "namespace: x\nlayers:\n  - driver: memory\n    ttl: a: b\n", "test.yaml:4: invalid YAML: mapping values are not allowed"},
		{"tab", "namespace: x\n\tlayers: []\n", "test.yaml:2: invalid YAML:"},
		{"first line", "namespace: a: b\n", "test.yaml:1: invalid YAML: mapping values are not allowed"},
		{"duplicate key", "namespace: a\nlayers: []\nnamespace: b\n", `test.yaml:3: invalid YAML: mapping key "namespace" already defined at line 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseWith(tc.doc)
			wantErr(t, err, tc.want)
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("no line in %#v", err)
			}
		})
	}
}

func TestParse_TopLevelMustBeBlock(t *testing.T) {
	t.Parallel()
	_, err := parseWith("- driver: memory\n")
	wantErr(t, err, "test.yaml:1: the document must be a block of keys")
}

func TestParse_EmptyDocumentHasNoLayers(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# nothing\n", "~\n", "layers: []\n", "layers:\n"} {
		_, err := parseWith(doc)
		wantErr(t, err, "layers: no layers")
	}
}

func TestParse_UnknownTopLevelKey(t *testing.T) {
	t.Parallel()
	_, err := parseWith("layers: [{driver: memory}]\nsingelflight: {driver: redis}\n")
	wantErr(t, err, `layercache/config: test.yaml:2: singelflight: unknown key (did you mean "singleflight"?)`)

	_, err = parseWith("layers: [{driver: memory}]\ncolour: blue\n")
	wantErr(t, err, "test.yaml:2: colour: unknown key (known keys: bus, defaults, degradation, layers, namespace, singleflight)")
}

func TestParse_UnknownKeyInDegradationAndDefaults(t *testing.T) {
	t.Parallel()
	_, err := parseWith("layers: [{driver: memory}]\ndegradation:\n  retry_afer: 1s\ndefaults:\n  tll: 1m\n  frobnicate: true\n")
	wantErr(t, err,
		`test.yaml:3: degradation.retry_afer: unknown key (did you mean "retry_after"?)`,
		`test.yaml:5: defaults.tll: unknown key (did you mean "ttl"?)`,
		`test.yaml:6: defaults.frobnicate: unknown key (known keys:`,
	)
}

func TestParse_WrongTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"duration list", "defaults: {ttl: [1, 2]}", `defaults.ttl: expected a duration such as "100ms" or "1h30m", got a list`},
		{"duration word", "defaults: {ttl: forever}", `defaults.ttl: invalid duration "forever"`},
		{"duration unitless", "defaults: {ttl: 60}", `defaults.ttl: a duration needs a unit: write "60s"`},
		{"count word", "degradation: {failure_threshold: lots}", `degradation.failure_threshold: expected a whole number or a size such as "64MiB", "1GB" or "512KiB", got "lots"`},
		{"count fraction", "degradation: {failure_threshold: 2.5}", `degradation.failure_threshold: expected a whole number, got 2.5`},
		{"bool string", "degradation: {start_degraded: yes please}", `degradation.start_degraded: expected true or false, got a string ("yes please")`},
		{"float string", "defaults: {jitter: lots}", `defaults.jitter: expected a number, got a string ("lots")`},
		{"namespace number", "namespace: 42", "namespace: expected a string, got a number"},
		{"layers scalar", "layers: memory", "layers: expected a list of blocks"},
		{"layer scalar", "layers: [memory]", "layers[0]: expected a block of keys with a driver key, got a string"},
		{"driver number", "layers: [{driver: 5}]", `layers[0].driver: expected a driver name such as "redis", got a number`},
		{"bus scalar", "bus: redis", "bus: expected a block of keys with a driver key, got a string"},
		{"degradation scalar", "degradation: fast", "degradation: expected a block of keys, got a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := tc.doc + "\n"
			if !strings.Contains(doc, "layers:") {
				doc = "layers: [{driver: memory}]\n" + doc
			}
			_, err := parseWith(doc)
			wantErr(t, err, "test.yaml:", tc.want)
		})
	}
}

func TestParse_NegativeValues(t *testing.T) {
	t.Parallel()
	_, err := parseWith("layers: [{driver: memory}]\ndefaults:\n  ttl: -1m\n  stale_if_error: -1s\ndegradation:\n  failure_threshold: -3\n")
	wantErr(t, err,
		"test.yaml:3: defaults.ttl: must not be negative, got -1m0s",
		"test.yaml:4: defaults.stale_if_error: must not be negative, got -1s",
		"test.yaml:6: degradation.failure_threshold: must not be negative, got -3",
	)
}

func TestParse_ImpossibleValues(t *testing.T) {
	t.Parallel()
	_, err := parseWith("namespace: my app\nlayers: [{driver: memory}]\ndegradation: {timeout: 0s, retry_after: 0s, failure_threshold: 0}\ndefaults: {jitter: 1.5}\n")
	wantErr(t, err,
		"test.yaml:1: namespace: must not contain spaces",
		"test.yaml:3: degradation.timeout: must be positive, got 0s",
		"degradation.retry_after: must be positive",
		"degradation.failure_threshold: must be at least 1, got 0",
		"test.yaml:4: defaults.jitter: must be at least 0 and less than 1, got 1.5",
	)
}

func TestParse_BlockWithoutDriver(t *testing.T) {
	t.Parallel()
	_, err := parseWith("layers:\n  - driver: memory\n  - url: redis://x\nbus: {url: redis://x}\nsingleflight: {}\n")
	wantErr(t, err,
		"test.yaml:3: layers[1]: no driver key",
		"test.yaml:4: bus: no driver key",
		"test.yaml:5: singleflight: no driver key",
	)
	_, err = parseWith("layers:\n  - driver: ''\n")
	wantErr(t, err, "test.yaml:2: layers[0].driver: is empty")
}

func TestParse_ReportsAllProblemsInPathOrder(t *testing.T) {
	t.Parallel()
	_, err := parseWith("layers: [{driver: memory}]\nzzz: 1\naaa: 2\ndefaults: {ttl: -1s}\n")
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 problems, got %q", lines)
	}
	for i, w := range []string{"aaa:", "defaults.ttl:", "zzz:"} {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Errorf("not three joined errors: %#v", err)
	}
}

func TestParse_DriverKeysAreNotCheckedUntilDecode(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "layers:\n  - driver: redis\n    tiemout: 1s\n")
	var r redisOpts
	err := c.Layers[0].Decode(&r)
	wantErr(t, err, `layercache/config: test.yaml:3: layers[0].tiemout: unknown key (did you mean "timeout"?)`)
}

func TestParse_AnchorsMergeKeysAndExtensionKeys(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `x-redis: &redis
  driver: redis
  url: redis://x:1/0
layers:
  - driver: memory
  - <<: *redis
    ttl: 1h
    tiemout: 1s
bus: *redis
`)
	if c.Layers[1].Driver != "redis" || c.Bus.Driver != "redis" {
		t.Fatalf("drivers %q, %q", c.Layers[1].Driver, c.Bus.Driver)
	}
	var r redisOpts
	if err := c.Bus.Decode(&r); err != nil || r.URL != "redis://x:1/0" {
		t.Errorf("bus = %+v, %v", r, err)
	}
	err := c.Layers[1].Decode(&r)
	wantErr(t, err, `test.yaml:8: layers[1].tiemout: unknown key`)
	if r.URL != "redis://x:1/0" || r.TTL != time.Hour {
		t.Errorf("layer = %+v", r)
	}

	// The package documentation's example.
	c = mustParse(t, `x-redis: &redis { driver: redis, url: redis://cache:6379/0 }
layers:
  - driver: memory
  - { <<: *redis, ttl: 1h }
bus: *redis
`)
	r = redisOpts{}
	if err := c.Layers[1].Decode(&r); err != nil || r.URL != "redis://cache:6379/0" || r.TTL != time.Hour {
		t.Errorf("layers[1] = %+v, %v", r, err)
	}
}

func TestValidate_ConfigBuiltInCode(t *testing.T) {
	t.Parallel()
	c := &Config{Degradation: defaultDegradation, Defaults: defaultDefaults}
	wantErr(t, c.Validate(), "layercache/config: layers: no layers")

	c.Layers = []*Block{{Driver: "memory"}, nil, {}}
	c.Bus = &Block{}
	c.Defaults.TTL = -time.Second
	c.Defaults.Jitter = -0.5
	err := c.Validate()
	wantErr(t, err,
		"layercache/config: layers[1]: is nil",
		"layercache/config: layers[2]: no driver key",
		"layercache/config: bus: no driver key",
		"layercache/config: defaults.ttl: must not be negative, got -1s",
		"layercache/config: defaults.jitter: must be at least 0",
	)

	c = &Config{Layers: []*Block{{Driver: "memory"}}, Degradation: defaultDegradation, Defaults: defaultDefaults}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	var m memoryOpts
	if err := c.Layers[0].Decode(&m); err != nil || m != (memoryOpts{}) {
		t.Errorf("empty block decodes to %+v, %v", m, err)
	}
}
