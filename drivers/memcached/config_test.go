package memcached

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
)

// openYAML opens the second layer of a configuration document through the
// registry, as layercache.Open does.
func openYAML(t *testing.T, doc string) (*Layer, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), "cache.yaml")
	if err != nil {
		return nil, err
	}
	d, ok := driver.Lookup("memcached")
	if !ok {
		t.Fatal(`driver "memcached" is not registered`)
	}
	l, err := d.(driver.Driver).OpenLayer(context.Background(), scoped{cfg.Layers[1], cfg.Namespace})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.(*Layer), nil
}

// scoped hands the driver the document's namespace with a block, as the
// cache does.
type scoped struct {
	*config.Block
	namespace string
}

func (s scoped) Namespace() string { return s.namespace }

func TestOpenLayer_EveryKeyIsApplied(t *testing.T) {
	s := startServer(t)
	l, err := openYAML(t, `
namespace: shop
layers:
  - driver: memory
  - driver: memcached
    addrs: [`+s.Addr()+`, /run/memcached.sock]
    prefix: "own:"
    ttl: 10m
    timeout: 250ms
    max_value_size: 2MiB
    compress_above: 1KiB
    max_idle_conns: 8
`)
	if err != nil {
		t.Fatalf("OpenLayer: %v", err)
	}
	if l.prefix != "own:" || l.ttl != 10*time.Minute || l.Timeout() != 250*time.Millisecond ||
		l.maxValueSize != 2<<20 || l.env.CompressAbove != 1024 || len(l.servers.addrs) != 2 {
		t.Errorf("options not applied: %+v", l)
	}
	var c *memcache.Client
	if !l.As(&c) || c.Timeout != 250*time.Millisecond || c.MaxIdleConns != 8 {
		t.Errorf("client: Timeout %v, MaxIdleConns %d", c.Timeout, c.MaxIdleConns)
	}
}

func TestOpenLayer_DefaultsAndNamespacePrefix(t *testing.T) {
	s := startServer(t)
	l, err := openYAML(t, "namespace: shop\nlayers:\n  - driver: memory\n  - driver: memcached\n    addrs: ["+s.Addr()+"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if l.prefix != "shop:" || l.ttl != DefaultTTL || l.Timeout() != DefaultTimeout || l.maxValueSize != DefaultMaxValueSize {
		t.Errorf("defaults: prefix %q, ttl %v, timeout %v, max_value_size %d", l.prefix, l.ttl, l.Timeout(), l.maxValueSize)
	}
	ctx := context.Background()
	if err := l.Set(ctx, "k", &driver.Entry{Payload: []byte("v"), Codec: "raw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(t).Get("shop:k"); err != nil {
		t.Fatalf("the key is not stored under the namespace's prefix: %v", err)
	}
}

func TestOpenLayer_BadBlocksNameTheKey(t *testing.T) {
	const head = "layers:\n  - driver: memory\n  - driver: memcached\n"
	for name, c := range map[string]struct{ block, want string }{
		"unknown key":          {"    addrs: [127.0.0.1:11211]\n    adrs: [x]\n", "layers[1].adrs"},
		"misspelt key":         {"    addrs: [127.0.0.1:11211]\n    tiemout: 1s\n", "layers[1].tiemout"},
		"addrs not a list":     {"    addrs: {a: 1}\n", "layers[1].addrs"},
		"timeout not duration": {"    addrs: [127.0.0.1:11211]\n    timeout: 5\n", "layers[1].timeout"},
		"ttl wrong type":       {"    addrs: [127.0.0.1:11211]\n    ttl: [1h]\n", "layers[1].ttl"},
		"negative ttl":         {"    addrs: [127.0.0.1:11211]\n    ttl: -1s\n", "layers[1].ttl"},
		"size not a size":      {"    addrs: [127.0.0.1:11211]\n    max_value_size: lots\n", "layers[1].max_value_size"},
		"size too large":       {"    addrs: [127.0.0.1:11211]\n    max_value_size: 2GiB\n", "layers[1].max_value_size"},
		"no addrs":             {"    ttl: 1h\n", "layers[1].addrs"},
		"empty addr":           {"    addrs: [127.0.0.1:11211, \"\"]\n", "layers[1].addrs[1]"},
		"addr without port":    {"    addrs: [cache.internal]\n", "layers[1].addrs[0]"},
		"addr with bad port":   {"    addrs: [\"cache:99999\"]\n", "layers[1].addrs[0]"},
		"duplicate addr":       {"    addrs: [a:1, b:2, a:1]\n", "layers[1].addrs[2]"},
		"prefix with space":    {"    addrs: [a:1]\n    prefix: \"my app:\"\n", "layers[1].prefix"},
		"prefix too long":      {"    addrs: [a:1]\n    prefix: " + strings.Repeat("p", 203) + "\n", "layers[1].prefix"},
	} {
		l, err := openYAML(t, head+c.block)
		if err == nil {
			t.Errorf("%s: accepted (%+v)", name, l)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not name %s", name, err, c.want)
		}
	}
}

func TestOpenLayer_NamespaceThatCannotBeAPrefix(t *testing.T) {
	// A namespace of 250 bytes leaves no room for keys: the error says
	// where the prefix came from and what to do.
	_, err := openYAML(t, "namespace: "+strings.Repeat("n", 250)+"\nlayers:\n  - driver: memory\n  - driver: memcached\n    addrs: [a:1]\n")
	if err == nil || !strings.Contains(err.Error(), "layers[1].prefix") || !strings.Contains(err.Error(), "namespace") {
		t.Fatalf("got %v", err)
	}
}

func TestNew_ReportsEveryBadOptionByKey(t *testing.T) {
	_, err := New(Options{Addrs: []string{"a:1", "a:1", "nope"}, TTL: -1, Timeout: -1, MaxValueSize: -1, CompressAbove: -1, MaxIdleConns: -1, Prefix: "a b"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, key := range []string{"addrs[1]", "addrs[2]", "prefix", "ttl", "timeout", "max_value_size", "compress_above", "max_idle_conns"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "addrs") {
		t.Errorf("New without addresses: %v", err)
	}
}
