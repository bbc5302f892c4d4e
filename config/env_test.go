package config

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

const envDoc = `namespace: file
layers:
  - driver: memory
    ttl: 1m
  - driver: redis
    url: redis://file:6379/0
    addrs: [a, b]
  - driver: disk
    dir: /var/cache
bus: { driver: redis, url: redis://file-bus:6379/0 }
`

func TestEnv_OverridesAnyValue(t *testing.T) {
	t.Parallel()
	c := mustParse(t, envDoc,
		"LAYERCACHE_NAMESPACE=env",
		"LAYERCACHE_DEGRADATION__RETRY_AFTER=5s",
		"LAYERCACHE_DEGRADATION__FAILURE_THRESHOLD=7",
		"LAYERCACHE_DEGRADATION__START_DEGRADED=TRUE",
		"LAYERCACHE_DEFAULTS__JITTER=0.25",
		"LAYERCACHE_LAYERS__0__TTL=30s",
		"LAYERCACHE_LAYERS__0__MAX_SIZE=64MiB",
		"LAYERCACHE_LAYERS__1__URL=redis://env:6379/1",
		"LAYERCACHE_LAYERS__1__PASSWORD=secret",
		"LAYERCACHE_LAYERS__1__DB=3",
		"LAYERCACHE_LAYERS__1__TLS__INSECURE=1",
		"LAYERCACHE_LAYERS__2__DRIVER=nuts",
		"LAYERCACHE_BUS__URL=redis://env-bus:6379/0",
		"PATH=/bin", // not ours
	)
	if c.Namespace != "env" {
		t.Errorf("Namespace = %q", c.Namespace)
	}
	wantDeg := Degradation{Timeout: defaultDegradation.Timeout, RetryAfter: 5 * time.Second, FailureThreshold: 7, StartDegraded: true}
	if c.Degradation != wantDeg {
		t.Errorf("Degradation = %+v, want %+v", c.Degradation, wantDeg)
	}
	if c.Defaults.Jitter != 0.25 {
		t.Errorf("Jitter = %v", c.Defaults.Jitter)
	}

	var m memoryOpts
	if err := c.Layers[0].Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m != (memoryOpts{TTL: 30 * time.Second, MaxSize: 64 << 20}) {
		t.Errorf("memory = %+v", m)
	}

	var r redisOpts
	if err := c.Layers[1].Decode(&r); err != nil {
		t.Fatal(err)
	}
	want := redisOpts{URL: "redis://env:6379/1", Addrs: []string{"a", "b"}, Password: "secret", DB: 3, TLS: &tlsOpts{Insecure: true}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("redis = %+v, want %+v", r, want)
	}

	if c.Layers[2].Driver != "nuts" {
		t.Errorf("layers[2].Driver = %q", c.Layers[2].Driver)
	}
	var b redisOpts
	if err := c.Bus.Decode(&b); err != nil || b.URL != "redis://env-bus:6379/0" {
		t.Errorf("bus = %+v, %v", b, err)
	}
}

func TestEnv_Lists(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"LAYERCACHE_LAYERS__1__ADDRS=x:1, y:2 ,z:3", []string{"x:1", "y:2", "z:3"}},
		{"LAYERCACHE_LAYERS__1__ADDRS=solo", []string{"solo"}},
		{"LAYERCACHE_LAYERS__1__ADDRS=", []string{}},
		{"LAYERCACHE_LAYERS__1__ADDRS__1=z", []string{"a", "z"}},
	} {
		var r redisOpts
		if err := mustParse(t, envDoc, tc.env).Layers[1].Decode(&r); err != nil {
			t.Fatalf("%s: %v", tc.env, err)
		}
		if !slices.Equal(r.Addrs, tc.want) || r.Addrs == nil {
			t.Errorf("%s: addrs = %#v, want %#v", tc.env, r.Addrs, tc.want)
		}
	}

	type ports struct {
		Ports []int `yaml:"ports"`
	}
	b := layer0(t, "layers: [{driver: x}]", "LAYERCACHE_LAYERS__0__PORTS=1,2KiB")
	var p ports
	if err := b.Decode(&p); err != nil || !slices.Equal(p.Ports, []int{1, 2048}) {
		t.Errorf("ports = %v, %v", p.Ports, err)
	}
	b = layer0(t, "layers: [{driver: x}]", "LAYERCACHE_LAYERS__0__PORTS=1,x")
	wantErr(t, b.Decode(&p), `env LAYERCACHE_LAYERS__0__PORTS: layers[0].ports[1]: expected a whole number or a size`)
}

func TestEnv_AddsWhatTheFileLeavesOut(t *testing.T) {
	t.Parallel()
	c := mustParse(t, "layers: [{driver: redis}]",
		"LAYERCACHE_BUS__DRIVER=redis",
		"LAYERCACHE_BUS__URL=redis://bus",
		"LAYERCACHE_DEFAULTS__TTL=1h",
		"LAYERCACHE_LAYERS__0__TLS__CA_FILE=/ca.pem",
	)
	if c.Bus == nil || c.Bus.Driver != "redis" || c.Bus.Path() != "bus" {
		t.Fatalf("Bus = %+v", c.Bus)
	}
	if c.Defaults.TTL != time.Hour || c.Defaults.NegativeTTL != defaultDefaults.NegativeTTL {
		t.Errorf("Defaults = %+v", c.Defaults)
	}
	var r redisOpts
	if err := c.Layers[0].Decode(&r); err != nil || r.TLS == nil || r.TLS.CAFile != "/ca.pem" {
		t.Errorf("redis = %+v, %v", r, err)
	}
}

func TestEnv_Errors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env, want string
	}{
		{"index past the end", "LAYERCACHE_LAYERS__3__URL=x",
			"layercache/config: env LAYERCACHE_LAYERS__3__URL: layers[3]: no such entry: layers has 3 (indexes 0 to 2)"},
		{"index not a number", "LAYERCACHE_LAYERS__REDIS__URL=x",
			`env LAYERCACHE_LAYERS__REDIS__URL: layers: is a list: expected an index such as 0 in place of "REDIS"`},
		{"index with leading zero", "LAYERCACHE_LAYERS__01__URL=x", "layers: is a list: expected an index"},
		{"index negative", "LAYERCACHE_LAYERS__-1__URL=x", "layers: is a list: expected an index"},
		{"replace the layers", "LAYERCACHE_LAYERS=memory", "env LAYERCACHE_LAYERS: layers: is a block of keys and cannot be set from one variable"},
		{"replace a block", "LAYERCACHE_BUS=redis", "env LAYERCACHE_BUS: bus: is a block of keys and cannot be set from one variable; set each key with LAYERCACHE_BUS__<KEY>"},
		{"replace a layer", "LAYERCACHE_LAYERS__0=memory", "env LAYERCACHE_LAYERS__0: layers[0]: is a block of keys"},
		{"key inside a value", "LAYERCACHE_NAMESPACE__X=1", "env LAYERCACHE_NAMESPACE__X: namespace: is a single value, not a block of keys"},
		{"no key", "LAYERCACHE_=1", "env LAYERCACHE_: names no key"},
		{"empty key", "LAYERCACHE_BUS____URL=x", "env LAYERCACHE_BUS____URL: empty key: separate keys with exactly two underscores"},
		{"trailing separator", "LAYERCACHE_BUS__=x", "empty key"},
		{"unknown top-level key", "LAYERCACHE_NAMESPCE=x", `env LAYERCACHE_NAMESPCE: namespce: unknown key (did you mean "namespace"?)`},
		{"unknown block key", "LAYERCACHE_DEGRADATION__RETRY=1s", `env LAYERCACHE_DEGRADATION__RETRY: degradation.retry: unknown key (did you mean "retry_after"?)`},
		{"unknown nested key", "LAYERCACHE_DEFAULTS__TTL__X=1s", `env LAYERCACHE_DEFAULTS__TTL__X: defaults.ttl: expected a duration such as "100ms" or "1h30m", got a block of keys`},
		{"bad duration", "LAYERCACHE_DEGRADATION__RETRY_AFTER=soon", `env LAYERCACHE_DEGRADATION__RETRY_AFTER: degradation.retry_after: invalid duration "soon"`},
		{"negative duration", "LAYERCACHE_DEFAULTS__TTL=-1s", "env LAYERCACHE_DEFAULTS__TTL: defaults.ttl: must not be negative, got -1s"},
		{"bad count", "LAYERCACHE_DEGRADATION__FAILURE_THRESHOLD=many", `env LAYERCACHE_DEGRADATION__FAILURE_THRESHOLD: degradation.failure_threshold: expected a whole number or a size`},
		{"bad bool", "LAYERCACHE_DEGRADATION__START_DEGRADED=yes", `env LAYERCACHE_DEGRADATION__START_DEGRADED: degradation.start_degraded: invalid boolean "yes": expected true or false`},
		{"bad float", "LAYERCACHE_DEFAULTS__JITTER=NaN", `env LAYERCACHE_DEFAULTS__JITTER: defaults.jitter: expected a finite number`},
		{"impossible value", "LAYERCACHE_DEFAULTS__JITTER=2", "env LAYERCACHE_DEFAULTS__JITTER: defaults.jitter: must be at least 0 and less than 1, got 2"},
		{"block without driver", "LAYERCACHE_SINGLEFLIGHT__URL=x", "env LAYERCACHE_SINGLEFLIGHT__URL: singleflight: no driver key"},
		{"empty driver", "LAYERCACHE_LAYERS__0__DRIVER=", "env LAYERCACHE_LAYERS__0__DRIVER: layers[0].driver: is empty: name a registered driver"},
		{"bad namespace", "LAYERCACHE_NAMESPACE=a b", "env LAYERCACHE_NAMESPACE: namespace: must not contain spaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseWith(envDoc, tc.env)
			wantErr(t, err, tc.want)
			var ce *Error
			if errors.As(err, &ce) && ce.Env == "" {
				t.Errorf("Env not set in %#v", ce)
			}
		})
	}
}

func TestEnv_NoLayersToOverride(t *testing.T) {
	t.Parallel()
	_, err := parseWith("namespace: x\n", "LAYERCACHE_LAYERS__0__DRIVER=memory")
	wantErr(t, err, "env LAYERCACHE_LAYERS__0__DRIVER: layers: no such entry: the document defines no layers")
	_, err = parseWith("layers: []\n", "LAYERCACHE_LAYERS__0__DRIVER=memory")
	wantErr(t, err, "env LAYERCACHE_LAYERS__0__DRIVER: layers[0]: no such entry: layers is empty")
}

func TestEnv_ErrorsInDriverBlocksNameTheVariable(t *testing.T) {
	t.Parallel()
	c := mustParse(t, envDoc,
		"LAYERCACHE_LAYERS__1__TIMEOUT=fast",
		"LAYERCACHE_LAYERS__1__PASWORD=x",
		"LAYERCACHE_LAYERS__1__TLS=on",
		"LAYERCACHE_LAYERS__1__NEW__KEY=1",
	)
	var r redisOpts
	err := c.Layers[1].Decode(&r)
	wantErr(t, err,
		`layercache/config: env LAYERCACHE_LAYERS__1__TIMEOUT: layers[1].timeout: invalid duration "fast"`,
		`layercache/config: env LAYERCACHE_LAYERS__1__PASWORD: layers[1].pasword: unknown key (did you mean "password"?)`,
		`layercache/config: env LAYERCACHE_LAYERS__1__TLS: layers[1].tls: a block of keys cannot be set from one variable; set each key with LAYERCACHE_LAYERS__1__TLS__<KEY>`,
		`layercache/config: env LAYERCACHE_LAYERS__1__NEW__KEY: layers[1].new: unknown key`,
	)
}

func TestEnv_ValuesForInterfaceFieldsAreStrings(t *testing.T) {
	t.Parallel()
	type opts struct {
		Extra map[string]any `yaml:"extra"`
		Any   any            `yaml:"any"`
	}
	b := layer0(t, "layers: [{driver: x, extra: {a: 1}}]",
		"LAYERCACHE_LAYERS__0__EXTRA__B=2",
		"LAYERCACHE_LAYERS__0__ANY__DEEP__KEY=v",
	)
	var o opts
	if err := b.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"a": 1, "b": "2"}; !reflect.DeepEqual(o.Extra, want) {
		t.Errorf("Extra = %#v, want %#v", o.Extra, want)
	}
	if want := map[string]any{"deep": map[string]any{"key": "v"}}; !reflect.DeepEqual(o.Any, want) {
		t.Errorf("Any = %#v, want %#v", o.Any, want)
	}
}

// TestParse_ReadsProcessEnvironment checks the public entry points use the
// real environment; it cannot run in parallel.
func TestParse_ReadsProcessEnvironment(t *testing.T) {
	t.Setenv("LAYERCACHE_NAMESPACE", "from-env")
	t.Setenv("LAYERCACHE_LAYERS__0__PASSWORD", "secret")
	c, err := Parse([]byte("namespace: file\nlayers: [{driver: redis}]\n"), "inline")
	if err != nil {
		t.Fatal(err)
	}
	var r redisOpts
	if err := c.Layers[0].Decode(&r); err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "from-env" || r.Password != "secret" {
		t.Errorf("namespace %q, password %q", c.Namespace, r.Password)
	}

	t.Setenv("LAYERCACHE_LAYERS__1__URL", "redis://x")
	_, err = Parse([]byte("layers: [{driver: redis}]\n"), "inline")
	wantErr(t, err, "env LAYERCACHE_LAYERS__1__URL: layers[1]: no such entry")
}
