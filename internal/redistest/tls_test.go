package redistest

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// pingWith pings s with a one-attempt client built from o.
func pingWith(t *testing.T, o *goredis.Options) error {
	t.Helper()
	o.MaxRetries, o.DialerRetries = -1, 1
	o.DialTimeout = 5 * time.Second
	c := goredis.NewClient(o)
	defer c.Close()
	return c.Ping(t.Context()).Err()
}

func TestStartTLS_ServesOnlyClientsThatTrustItsAuthority(t *testing.T) {
	t.Parallel()
	s := StartTLS(t)

	if !strings.HasPrefix(s.URL(), "rediss://127.0.0.1:") {
		t.Errorf("URL = %q, want rediss://127.0.0.1:PORT/0", s.URL())
	}
	if err := s.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("harness client: %v", err)
	}
	if got := s.Do(t, "PING"); got != "PONG" {
		t.Errorf("Do PING = %v", got)
	}

	if err := pingWith(t, &goredis.Options{Addr: s.Addr()}); err == nil {
		t.Error("a plain-text client was served by a TLS-only server")
	}
	err := pingWith(t, &goredis.Options{Addr: s.Addr(), TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the test authority: err = %v, want a certificate error", err)
	}

	o, err := goredis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	o.TLSConfig.RootCAs = s.TLSConfig().RootCAs
	if err := pingWith(t, o); err != nil {
		t.Errorf("client from URL with the authority: %v", err)
	}

	s.Restart()
	if got := s.Do(t, "PING"); got != "PONG" {
		t.Errorf("after Restart, Do PING = %v", got)
	}
}

func TestStartTLS_ClientCertificateWhenRequired(t *testing.T) {
	t.Parallel()
	s := StartTLS(t, "--tls-auth-clients", "yes")
	noCert := s.TLSConfig()
	noCert.Certificates = nil
	if err := pingWith(t, &goredis.Options{Addr: s.Addr(), TLSConfig: noCert}); err == nil {
		t.Error("a client without a certificate was served by a server that requires one")
	}
	if err := pingWith(t, &goredis.Options{Addr: s.Addr(), TLSConfig: s.TLSConfig()}); err != nil {
		t.Errorf("client with the test certificate: %v", err)
	}
	if f := s.TLS(); f == nil || f.CA == "" || f.ClientCert == "" || f.ClientKey == "" {
		t.Errorf("TLS() = %+v", f)
	}
	if Start(t).TLS() != nil || Start(t).TLSConfig() != nil {
		t.Error("a plain server reports TLS files")
	}
}

func TestAddUser_UserGetsOnlyItsRules(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.AddUser(t, "app", "pw", "~app:*", "+get", "+set")
	o, err := goredis.ParseURL(s.URLFor("app", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	o.MaxRetries = -1
	c := goredis.NewClient(o)
	defer c.Close()
	ctx := t.Context()
	if err := c.Set(ctx, "app:k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on a granted key: %v", err)
	}
	if err := c.Set(ctx, "other:k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("SET on a key outside the pattern: err = %v, want NOPERM", err)
	}
	if err := c.Del(ctx, "app:k").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("DEL without the command: err = %v, want NOPERM", err)
	}
	bad, _ := goredis.ParseURL(s.URLFor("app", "wrong"))
	bad.MaxRetries = -1
	wc := goredis.NewClient(bad)
	defer wc.Close()
	if err := wc.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: err = %v, want WRONGPASS", err)
	}
}
