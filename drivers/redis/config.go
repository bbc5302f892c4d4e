package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

func init() { driver.Register("redis", redisDriver{}) }

// Config is the configuration block of a "redis" layer. Exactly one of URL
// and Addrs says where the server is:
//
//	url: redis://user:pass@host:6379/0    # one server; rediss:// for TLS
//	addrs: [node1:6379, node2:6379]       # Cluster seed nodes
//	addrs: [s1:26379, s2:26379]           # Sentinels, with master_name
//	master_name: mymaster
//
// The connection fields (Username to TLSServerName) override what the URL
// says when they are set, so that a password can come from the environment
// while the URL stays in the file.
//
// Passwords, in Password and in URL, and signing keys print redacted with
// fmt and log/slog and when marshalled (see [Secret], [URL] and [Key]), so
// that a Config can be logged.
type Config struct {
	Connection `yaml:",inline"`

	// TTL, Prefix, Timeout, CompressAbove, MaxValueSize and SigningKeys
	// are as in [Options], except that Prefix defaults to the
	// configuration's namespace followed by a colon ("myapp:") when one is
	// set.
	TTL           time.Duration `yaml:"ttl"`
	Prefix        string        `yaml:"prefix"`
	Timeout       time.Duration `yaml:"timeout"`
	CompressAbove int           `yaml:"compress_above"`
	MaxValueSize  int           `yaml:"max_value_size"`
	SigningKeys   []Key         `yaml:"signing_keys"`
}

// Connection says where a Redis server is and how to connect to it: the
// address part of a layer's block, and of a "bus" or "singleflight" block
// that does not share the layer's client.
type Connection struct {
	// URL is a redis:// or rediss:// URL of one server, with optional user,
	// password, database number and go-redis query parameters
	// (see goredis.ParseURL). It prints with its password redacted.
	URL URL `yaml:"url"`

	// Addrs are the seed nodes of a Cluster, or the Sentinels' addresses
	// when MasterName is set.
	Addrs []string `yaml:"addrs"`

	// MasterName is the name of the Sentinel-managed master; it requires
	// Addrs.
	MasterName string `yaml:"master_name"`

	// Username and Password authenticate with the server (ACL user or
	// requirepass). Default: none, or what the URL says. The password
	// prints as "[redacted]".
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`

	// DB is the database number. A Cluster has only database 0.
	// Default: 0, or what the URL says.
	DB int `yaml:"db"`

	// PoolSize is the number of connections per server.
	// Default: go-redis's, 10 per CPU.
	PoolSize int `yaml:"pool_size"`

	// DialTimeout, ReadTimeout and WriteTimeout bound connecting and socket
	// I/O, whatever the context allows.
	// Default: the layer's timeout, so that the socket deadlines alone bound
	// every operation and none needs a timer of its own. Raise dial_timeout
	// for a server whose TLS handshake takes longer.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// poolTimeout bounds the wait for a free connection; it follows the
	// layer's timeout.
	poolTimeout time.Duration

	// TLS connects with TLS (at least 1.2, server name from the address).
	// A rediss:// URL and any of the TLS fields below imply it.
	// Default: false.
	TLS bool `yaml:"tls"`

	// TLSCAFile is a PEM file of the certificate authorities the server's
	// certificate must chain to, for a server whose certificate the system
	// does not trust (a private CA, a self-signed certificate).
	// Default: the system's roots.
	TLSCAFile string `yaml:"tls_ca_file"`

	// TLSCertFile and TLSKeyFile are the PEM certificate and private key
	// the client presents, for a server that authenticates clients by
	// certificate (tls-auth-clients yes). Give both or neither.
	// Default: none.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`

	// TLSServerName is the name the server's certificate must carry when
	// it is not the host dialled. Default: the host of the address.
	TLSServerName string `yaml:"tls_server_name"`
}

// usesTLS reports whether any TLS setting is given.
func (c *Connection) usesTLS() bool {
	return c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSServerName != ""
}

// tlsConfig completes base (from a rediss:// URL, or nil) with the TLS
// settings, reading the files they name.
func (c *Connection) tlsConfig(base *tls.Config) (*tls.Config, error) {
	tc := base
	if tc == nil {
		tc = &tls.Config{}
	}
	tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	if c.TLSServerName != "" {
		tc.ServerName = c.TLSServerName
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca_file: no PEM certificate in %s", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return nil, errors.New("tls_cert_file and tls_key_file go together; give both or neither")
	case c.TLSCertFile != "":
		// The error names the files only: it never shows the key.
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file %s and tls_key_file %s: not a valid PEM certificate and matching key", c.TLSCertFile, c.TLSKeyFile)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// redisDriver opens "redis" layers from configuration.
type redisDriver struct{}

// OpenLayer decodes and checks a "redis" layer block, builds a client with
// ContextTimeoutEnabled and returns a layer that owns it. If the server
// answers, it checks that the Redis user has every right the layer needs
// ([Layer.CheckAccess]); a server that does not answer is left to the
// cache's degradation handling.
func (redisDriver) OpenLayer(ctx context.Context, dc driver.Config) (driver.Layer, error) {
	var cfg Config
	if err := dc.Decode(&cfg); err != nil {
		return nil, err
	}
	t := cfg.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	for _, d := range []*time.Duration{&cfg.DialTimeout, &cfg.ReadTimeout, &cfg.WriteTimeout} {
		if *d == 0 {
			*d = t
		}
	}
	cfg.poolTimeout = t
	if cfg.Prefix == "" && dc.Namespace() != "" {
		cfg.Prefix = dc.Namespace() + ":"
	}
	client, err := cfg.client()
	if err != nil {
		return nil, fmt.Errorf("layercache/redis: %s: %w", dc.Path(), err)
	}
	l, err := newLayer(cfg.options(client), true)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("%s: %w", dc.Path(), err)
	}
	if err := l.CheckAccess(ctx); err != nil {
		_ = l.Close()
		return nil, err // layercache.Open names the block
	}
	return l, nil
}

func (c *Config) options(client goredis.UniversalClient) Options {
	return Options{
		Client:        client,
		TTL:           c.TTL,
		Prefix:        c.Prefix,
		Timeout:       c.Timeout,
		CompressAbove: c.CompressAbove,
		MaxValueSize:  c.MaxValueSize,
		SigningKeys:   c.SigningKeys,
	}
}

// client checks the connection fields and builds the client they describe.
func (c *Connection) client() (goredis.UniversalClient, error) {
	var errs []error
	switch {
	case c.URL != "" && len(c.Addrs) > 0:
		errs = append(errs, errors.New("url and addrs are exclusive; set one"))
	case c.URL == "" && len(c.Addrs) == 0:
		errs = append(errs, errors.New("one of url and addrs is required"))
	}
	for i, a := range c.Addrs {
		if a == "" {
			errs = append(errs, fmt.Errorf("addrs[%d] is empty", i))
		}
	}
	if c.MasterName != "" && len(c.Addrs) == 0 {
		errs = append(errs, errors.New("master_name needs the Sentinels' addrs"))
	}
	if c.DB < 0 {
		errs = append(errs, fmt.Errorf("db %d is negative", c.DB))
	}
	if c.DB != 0 && len(c.Addrs) > 0 && c.MasterName == "" {
		errs = append(errs, fmt.Errorf("db %d: a Cluster has only database 0", c.DB))
	}
	if c.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("pool_size %d is negative", c.PoolSize))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.key, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if c.URL != "" {
		o, err := goredis.ParseURL(string(c.URL))
		if err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				// url.Error quotes the URL, password included.
				return nil, errors.New("url: not a valid URL")
			}
			return nil, fmt.Errorf("url: %w", err)
		}
		if c.Username != "" {
			o.Username = c.Username
		}
		if c.Password != "" {
			o.Password = string(c.Password)
		}
		if c.DB != 0 {
			o.DB = c.DB
		}
		if c.PoolSize != 0 {
			o.PoolSize = c.PoolSize
		}
		if c.DialTimeout != 0 {
			o.DialTimeout = c.DialTimeout
		}
		if c.ReadTimeout != 0 {
			o.ReadTimeout = c.ReadTimeout
		}
		if c.WriteTimeout != 0 {
			o.WriteTimeout = c.WriteTimeout
		}
		if c.poolTimeout != 0 {
			o.PoolTimeout = c.poolTimeout
		}
		// One attempt per operation: the cache's breaker decides when to
		// try again, and a retry would get the full timeouts once more.
		o.MaxRetries, o.DialerRetries = -1, 1
		if c.usesTLS() || o.TLSConfig != nil {
			if o.TLSConfig, err = c.tlsConfig(o.TLSConfig); err != nil {
				return nil, err
			}
		}
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(o), nil
	}

	u := &goredis.UniversalOptions{
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		Username:              c.Username,
		Password:              string(c.Password),
		DB:                    c.DB,
		PoolSize:              c.PoolSize,
		DialTimeout:           c.DialTimeout,
		ReadTimeout:           c.ReadTimeout,
		WriteTimeout:          c.WriteTimeout,
		PoolTimeout:           c.poolTimeout,
		ContextTimeoutEnabled: true,
		// addrs without master_name always means Cluster, even with a
		// single seed node: one standalone server is given by url.
		IsClusterMode: c.MasterName == "",
	}
	if c.usesTLS() {
		// Without tls_server_name, the server name is taken from each
		// node's address when dialling.
		tc, err := c.tlsConfig(nil)
		if err != nil {
			return nil, err
		}
		u.TLSConfig = tc
	}
	return goredis.NewUniversalClient(u), nil
}
