package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/internal/redistest"
)

// yamlBlock is a driver.Config over a YAML text, decoded strictly as the
// config package does.
type yamlBlock struct{ path, text string }

func (b yamlBlock) Decode(v any) error {
	dec := yaml.NewDecoder(strings.NewReader(b.text))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", b.path, err)
	}
	return nil
}

func (b yamlBlock) Path() string      { return b.path }
func (b yamlBlock) Namespace() string { return "" }

// openLayer opens a layer through the registry, as layercache.Open does.
func openLayer(t *testing.T, text string) (*Layer, error) {
	t.Helper()
	d, ok := driver.Lookup("redis")
	if !ok {
		t.Fatal(`driver "redis" is not registered`)
	}
	l, err := d.(driver.Driver).OpenLayer(context.Background(), yamlBlock{"layers[1]", text})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.(*Layer), nil
}

func TestOpenLayer_URL(t *testing.T) {
	s := redistest.Start(t, "--requirepass", "secret")
	l, err := openLayer(t, fmt.Sprintf(`
url: redis://127.0.0.1:%d/3
password: secret
prefix: "app:"
ttl: 10m
timeout: 250ms
compress_above: 2048
max_value_size: 1048576
pool_size: 4
dial_timeout: 1s
read_timeout: 2s
write_timeout: 2s
`, s.Port()))
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	if l.ttl != 10*time.Minute || l.prefix != "app:" || l.Timeout() != 250*time.Millisecond ||
		l.env.CompressAbove != 2048 || l.maxValueSize != 1<<20 || !l.owned {
		t.Errorf("options not applied: %+v", l)
	}
	var c *goredis.Client
	if !l.As(&c) {
		t.Fatal("As(**goredis.Client) = false")
	}
	o := c.Options()
	if !o.ContextTimeoutEnabled || o.DB != 3 || o.PoolSize != 4 || o.Password != "secret" {
		t.Errorf("client options: ContextTimeoutEnabled %v, DB %d, PoolSize %d", o.ContextTimeoutEnabled, o.DB, o.PoolSize)
	}
	ctx := context.Background()
	if err := l.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if e, err := l.Get(ctx, "k"); err != nil || e == nil {
		t.Fatalf("Get = %v, %v", e, err)
	}
	db3 := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Password: "secret", DB: 3})
	defer db3.Close()
	if n, err := db3.Exists(ctx, "app:k").Result(); err != nil || n != 1 {
		t.Errorf("the key is not in database 3 under the prefix: %d, %v", n, err)
	}

	// Close closes the client the layer built, once.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("the layer's client still works after Close")
	}
}

// testOpenLayerClusterAddrs runs within TestCluster.
func testOpenLayerClusterAddrs(t *testing.T, c *redistest.Cluster) {
	l, err := openLayer(t, fmt.Sprintf("addrs: [%s]\nprefix: \"app:\"\n", strings.Join(c.Addrs()[:1], ", ")))
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	var cc *goredis.ClusterClient
	if !l.As(&cc) || !cc.Options().ContextTimeoutEnabled {
		t.Fatal("a block with addrs did not give a cluster client with ContextTimeoutEnabled")
	}
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d", "e", "f"}
	for _, k := range keys {
		if err := l.Set(ctx, k, &driver.Entry{Payload: []byte(k)}); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	es, err := l.GetMany(ctx, keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	for i, e := range es {
		if e == nil || string(e.Payload) != keys[i] {
			t.Errorf("GetMany[%d] = %v", i, e)
		}
	}
}

func TestOpenLayer_Sentinel(t *testing.T) {
	// Building the client contacts nothing, so a Sentinel block can be
	// checked without Sentinels.
	l, err := openLayer(t, "addrs: [127.0.0.1:1]\nmaster_name: mymaster\ndb: 2\n")
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	var c *goredis.Client
	var cc *goredis.ClusterClient
	if !l.As(&c) || l.As(&cc) {
		t.Fatal("a block with master_name did not give a failover *goredis.Client")
	}
	if o := c.Options(); !o.ContextTimeoutEnabled || o.DB != 2 {
		t.Errorf("ContextTimeoutEnabled %v, DB %d", o.ContextTimeoutEnabled, o.DB)
	}
}

func TestOpenLayer_BadBlocksNameThePath(t *testing.T) {
	for name, text := range map[string]string{
		"url and addrs":        "url: redis://127.0.0.1:1/0\naddrs: [127.0.0.1:2]\n",
		"neither url nor addr": "prefix: \"app:\"\n",
		"bad url":              "url: http://127.0.0.1:1\n",
		"master without addrs": "url: redis://127.0.0.1:1/0\nmaster_name: m\n",
		"db in a cluster":      "addrs: [127.0.0.1:1]\ndb: 1\n",
		"negative ttl":         "url: redis://127.0.0.1:1/0\nttl: -1s\n",
		"negative timeout":     "url: redis://127.0.0.1:1/0\ntimeout: -1s\n",
		"huge max_value_size":  "url: redis://127.0.0.1:1/0\nmax_value_size: 1073741824\n",
		"negative pool_size":   "url: redis://127.0.0.1:1/0\npool_size: -1\n",
		"unknown key":          "url: redis://127.0.0.1:1/0\nurls: x\n",
	} {
		l, err := openLayer(t, text)
		if err == nil {
			t.Errorf("%s: OpenLayer succeeded (%T)", name, l)
			continue
		}
		if !strings.Contains(err.Error(), "layers[1]") {
			t.Errorf("%s: error %q does not name the block's path", name, err)
		}
	}
	// A URL's password never appears in an error.
	if _, err := openLayer(t, "url: \"redis://:hunter2@127.0.0.1:bad/0\"\n"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL with a password: %v", err)
	}
}

type namespacedBlock struct{ yamlBlock }

func (namespacedBlock) Namespace() string { return "shop" }

func TestOpenLayer_PrefixDefaultsToNamespace(t *testing.T) {
	s := redistest.Start(t)
	d, _ := driver.Lookup("redis")
	open := func(text string) *Layer {
		l, err := d.(driver.Driver).OpenLayer(context.Background(), namespacedBlock{yamlBlock{"layers[1]", text}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		return l.(*Layer)
	}
	if p := open("url: " + s.URL() + "\n").prefix; p != "shop:" {
		t.Fatalf("prefix %q, want the namespace's", p)
	}
	if p := open("url: " + s.URL() + "\nprefix: 'own:'\n").prefix; p != "own:" {
		t.Fatalf("an explicit prefix was replaced: %q", p)
	}
}
