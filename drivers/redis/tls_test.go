package redis

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache"
	"github.com/layercache/layercache/config"
	"github.com/layercache/layercache/driver"
	_ "github.com/layercache/layercache/drivers/disk"
	"github.com/layercache/layercache/internal/keyring"
	"github.com/layercache/layercache/internal/redistest"
)

// The TLS stacks allow a second for the handshake: under -race on a busy
// machine it can take longer than the default 100ms dial timeout.
const tlsExtra = "    dial_timeout: 2s\n"

func TestTLS_LayerBusAndCoordinatorOverRediss(t *testing.T) {
	t.Parallel()
	s := redistest.StartTLS(t)
	s.AddUser(t, "app", "pw", appRules...)
	cfg := stackConfig(t, s.URL(), "app", "pw", tlsExtra+fmt.Sprintf("    tls_ca_file: %q\n", s.TLS().CA))
	a, err := openStack(t, cfg)
	if err != nil {
		t.Fatalf("Open over TLS: %v", err)
	}
	b, err := openStack(t, cfg)
	if err != nil {
		t.Fatalf("Open over TLS: %v", err)
	}
	exerciseStack(t, a, b)
}

func TestTLS_ServerMustBeTrustedAndSpokenTo(t *testing.T) {
	t.Parallel()
	s := redistest.StartTLS(t)
	plainURL := strings.Replace(s.URL(), "rediss://", "redis://", 1)
	for name, tc := range map[string]struct {
		url, extra string
		want       string
	}{
		"authority not given": {s.URL(), tlsExtra, "certificate"},
		"another authority":   {s.URL(), tlsExtra + fmt.Sprintf("    tls_ca_file: %q\n", redistest.StartTLS(t).TLS().CA), "certificate"},
		"wrong server name": {s.URL(), tlsExtra + fmt.Sprintf("    tls_ca_file: %q\n    tls_server_name: cache.example\n", s.TLS().CA),
			"cache.example"},
		"plain text": {plainURL, tlsExtra, "unreachable"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := openStack(t, stackConfig(t, tc.url, "", "", tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v; want an error saying %q", err, tc.want)
			}
		})
	}
	// tls: true with redis:// makes the same connection as rediss://.
	ok := tlsExtra + fmt.Sprintf("    tls: true\n    tls_ca_file: %q\n", s.TLS().CA)
	if _, err := openStack(t, stackConfig(t, plainURL, "", "", ok)); err != nil {
		t.Errorf("redis:// with tls: true: %v", err)
	}
}

func TestTLS_ClientCertificate(t *testing.T) {
	t.Parallel()
	s := redistest.StartTLS(t, "--tls-auth-clients", "yes")
	f := s.TLS()
	ca := tlsExtra + fmt.Sprintf("    tls_ca_file: %q\n", f.CA)
	if _, err := openStack(t, stackConfig(t, s.URL(), "", "", ca)); err == nil {
		t.Error("Open without a client certificate succeeded against a server that requires one")
	}
	withCert := ca + fmt.Sprintf("    tls_cert_file: %q\n    tls_key_file: %q\n", f.ClientCert, f.ClientKey)
	c, err := openStack(t, stackConfig(t, s.URL(), "", "", withCert))
	if err != nil {
		t.Fatalf("Open with the client certificate: %v", err)
	}
	if err := layercache.Set(context.Background(), c, "k", 1); err != nil {
		t.Fatal(err)
	}
}

func TestConnection_TLSSettingsAreChecked(t *testing.T) {
	s := redistest.StartTLS(t)
	f := s.TLS()
	for name, tc := range map[string]struct {
		block, want string
	}{
		"missing CA file":  {"tls_ca_file: /nonexistent/ca.pem", "tls_ca_file"},
		"CA file not PEM":  {fmt.Sprintf("tls_ca_file: %q", s.Dir()+"/redis.log"), "no PEM certificate"},
		"cert without key": {fmt.Sprintf("tls_cert_file: %q", f.ClientCert), "tls_key_file"},
		"key of another cert": {fmt.Sprintf("tls_cert_file: %q\ntls_key_file: %q", f.ClientCert, f.ServerKey),
			"tls_cert_file"},
	} {
		_, err := openLayer(t, "url: "+s.URL()+"\n"+tc.block+"\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: OpenLayer = %v; want an error about %s", name, err, tc.want)
		}
	}
	// Connection settings without an address are refused in a bus block:
	// they would be ignored in favour of the layer's connection.
	if _, err := openBus(t, "tls_ca_file: /x.pem\n", stackOf(t)); err == nil || !strings.Contains(err.Error(), "without url or addrs") {
		t.Errorf("bus with TLS settings and no address: %v", err)
	}
}

// TestExampleConfig_Secure opens examples/configs/secure.yaml against a TLS
// server with the ACL user it documents, with the secrets from the
// environment as the file says.
func TestExampleConfig_Secure(t *testing.T) {
	s := redistest.StartTLS(t)
	s.AddUser(t, "myapp", "s3cret", "~myapp:*", "~layercache:myapp:*", "&layercache:myapp:*",
		"+@read", "+@write", "+@scripting", "+@pubsub", "+ping", "+time", "-@dangerous")
	keyHex := func(b byte) string { return hex.EncodeToString(testKey(b)) }
	t.Setenv("LAYERCACHE_LAYERS__1__URL", s.URL())
	t.Setenv("LAYERCACHE_LAYERS__1__TLS_CA_FILE", s.TLS().CA)
	t.Setenv("LAYERCACHE_LAYERS__1__DIAL_TIMEOUT", "2s")
	t.Setenv("LAYERCACHE_LAYERS__1__PASSWORD", "s3cret")
	t.Setenv("LAYERCACHE_LAYERS__1__SIGNING_KEYS", keyHex(1)+","+keyHex(2))
	t.Setenv("LAYERCACHE_LAYERS__2__DIR", t.TempDir())
	t.Setenv("LAYERCACHE_LAYERS__2__ENCRYPTION_KEYS", keyHex(3))
	t.Setenv("LAYERCACHE_BUS__SIGNING_KEYS", keyHex(4))

	c, err := layercache.Open("../../examples/configs/secure.yaml", layercache.WithLogger(quietLogger))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx := context.Background()
	if err := layercache.Set(ctx, c, "user:1", "alice", layercache.WithTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// What reached Redis is signed with the first key.
	raw, err := s.Client(t).Get(ctx, "myapp:user:1").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	l := newLayerT(t, Options{Client: s.Client(t), Prefix: "myapp:", SigningKeys: []Key{testKey(1)}})
	if e, err := l.Get(ctx, "user:1"); err != nil || e == nil {
		t.Fatalf("the stored record does not verify with the first signing key: %v (%d bytes)", err, len(raw))
	}

	// Without its keys, the bus refuses to start.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LAYERCACHE_BUS__SIGNING_KEYS", "")
	if _, err := layercache.Open("../../examples/configs/secure.yaml"); err == nil || !strings.Contains(err.Error(), "replay_window needs signing_keys") {
		t.Errorf("Open without bus keys = %v", err)
	}
}

func TestExampleConfig_SecureParsesWithoutEnvironment(t *testing.T) {
	if _, err := config.Load("../../examples/configs/secure.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestOpenLayer_SigningKeysFromFileAndEnvironment decodes keys given in hex and
// base64, from the file and the environment, and refuses bad ones without
// showing them.
func TestOpenLayer_SigningKeysFromFileAndEnvironment(t *testing.T) {
	s := redistest.Start(t)
	doc := fmt.Sprintf("layers:\n  - driver: redis\n    url: %s\n    signing_keys: [%q]\nbus:\n  driver: redis\n  signing_keys: [\"base64:%s\"]\n",
		s.URL(), hex.EncodeToString(testKey(1)), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
	cfg, err := config.Parse([]byte(doc), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStack(t, cfg); err != nil {
		t.Fatalf("Open: %v", err)
	}

	t.Setenv("LAYERCACHE_LAYERS__0__SIGNING_KEYS", hex.EncodeToString(testKey(2))+", "+hex.EncodeToString(testKey(1)))
	cfg, err = config.Parse([]byte(doc), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStack(t, cfg); err != nil {
		t.Fatalf("Open with keys from the environment: %v", err)
	}
	l, err := redisDriver{}.OpenLayer(context.Background(), cfg.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.(*Layer).signer.KeyID() != keyring.IDOf(testKey(2)) {
		t.Error("the environment's first key does not sign")
	}

	secret := "0123456789abcdef0123456789abcdef0123456789abcdef!!" // almost hex
	for _, bad := range []string{secret, hex.EncodeToString(testKey(1)[:16])} {
		t.Setenv("LAYERCACHE_LAYERS__0__SIGNING_KEYS", bad)
		_, err := config.Parse([]byte(doc), "test.yaml")
		if err == nil {
			cfg, _ := config.Parse([]byte(doc), "test.yaml")
			_, err = openStack(t, cfg)
		}
		if err == nil || !strings.Contains(err.Error(), "signing_keys[0]") || strings.Contains(err.Error(), bad[:10]) {
			t.Errorf("bad key of %d characters: %v; want an error naming signing_keys[0] without the text", len(bad), err)
		}
	}
}

// stackOf is a stack holding one layer with a client, for blocks that
// share its connection.
func stackOf(t *testing.T) driver.Stack {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	return driver.Stack{Layers: []driver.Layer{newLayerT(t, Options{Client: c})}}
}
