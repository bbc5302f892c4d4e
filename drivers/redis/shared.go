package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// given reports whether the block names a server of its own.
func (c *Connection) given() bool {
	return c.URL != "" || len(c.Addrs) > 0 || c.MasterName != ""
}

// stackClient returns the client of the first layer of s that wraps one.
func stackClient(s driver.Stack) (goredis.UniversalClient, bool) {
	for _, l := range s.Layers {
		a, ok := l.(driver.Aser)
		if !ok {
			continue
		}
		var c goredis.UniversalClient
		if a.As(&c) && c != nil {
			return c, true
		}
	}
	return nil, false
}

// openClient returns the client a bus or coordinator block asks for and
// whether the caller owns it: its own when the block gives an address,
// else the stack's Redis layer's, which stays the layer's to close.
func openClient(path, what string, conn *Connection, s driver.Stack) (goredis.UniversalClient, bool, error) {
	if conn.given() {
		c, err := conn.client()
		if err != nil {
			return nil, false, fmt.Errorf("layercache/redis: %s: %w", path, err)
		}
		return c, true, nil
	}
	if conn.Username != "" || conn.Password != "" || conn.DB != 0 || conn.PoolSize != 0 ||
		conn.DialTimeout != 0 || conn.ReadTimeout != 0 || conn.WriteTimeout != 0 || conn.usesTLS() {
		return nil, false, fmt.Errorf("layercache/redis: %s: connection settings without url or addrs; "+
			"give an address, or leave them out to share the redis layer's connection", path)
	}
	c, ok := stackClient(s)
	if !ok {
		return nil, false, fmt.Errorf("layercache/redis: %s: the %s has no url or addrs, and the stack has no redis layer whose connection it could share", path, what)
	}
	return c, false, nil
}

// BusConfig is the configuration block of a bus whose driver is "redis":
//
//	bus: { driver: redis }                                  # share the redis layer's connection
//	bus: { driver: redis, url: redis://bus-host:6379/0, timeout: 250ms }
//	bus: { driver: redis, signing_keys: [KEY_HEX], replay_window: 30s }
//
// Its keys besides the connection's are those of [BusOptions].
type BusConfig struct {
	Connection `yaml:",inline"`
	BusOptions `yaml:",inline"`
}

// CoordinatorConfig is the configuration block of a single-flight
// coordinator whose driver is "redis":
//
//	singleflight: { driver: redis, lease: 5s, wait: notify }
//
// Its keys besides the connection's are those of [CoordinatorOptions].
type CoordinatorConfig struct {
	Connection         `yaml:",inline"`
	CoordinatorOptions `yaml:",inline"`
}

// OpenBus decodes a "bus" block and returns a [Bus] on the namespace of s.
// A bus that built its own client closes it on Close; one that shares the
// Redis layer's client leaves it to the layer.
func (redisDriver) OpenBus(_ context.Context, dc driver.Config, s driver.Stack) (driver.Bus, error) {
	var cfg BusConfig
	if err := dc.Decode(&cfg); err != nil {
		return nil, err
	}
	client, owned, err := openClient(dc.Path(), "bus", &cfg.Connection, s)
	if err != nil {
		return nil, err
	}
	o := cfg.BusOptions
	o.Client, o.Namespace = client, s.Namespace
	b, err := newBus(o, owned)
	if err != nil {
		if owned {
			_ = client.Close()
		}
		return nil, fmt.Errorf("%s: %w", dc.Path(), err)
	}
	return b, nil
}

// OpenCoordinator decodes a "singleflight" block and returns a
// [Coordinator] on the namespace of s, owning its client as OpenBus does.
// If the server answers, it checks the Redis user's rights on the lock keys
// ([Coordinator.CheckAccess]).
func (redisDriver) OpenCoordinator(ctx context.Context, dc driver.Config, s driver.Stack) (driver.Coordinator, error) {
	var cfg CoordinatorConfig
	if err := dc.Decode(&cfg); err != nil {
		return nil, err
	}
	client, owned, err := openClient(dc.Path(), "coordinator", &cfg.Connection, s)
	if err != nil {
		return nil, err
	}
	o := cfg.CoordinatorOptions
	o.Client, o.Namespace = client, s.Namespace
	co, err := newCoordinator(o, owned)
	if err != nil {
		if owned {
			_ = client.Close()
		}
		return nil, fmt.Errorf("%s: %w", dc.Path(), err)
	}
	if err := co.CheckAccess(ctx); err != nil {
		_ = co.Close()
		return nil, err // layercache.Open names the block
	}
	return co, nil
}

// channelName names a per-namespace resource: "layercache:NS:what".
func channelName(ns, what string) string {
	if ns == "" {
		return "layercache:" + what
	}
	return "layercache:" + ns + ":" + what
}

// isServerError reports whether err is an error reply from Redis (such as
// NOPERM or an unknown command) rather than a network or context failure:
// the first will not go away by retrying.
func isServerError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re)
}

var (
	_ driver.BusDriver         = redisDriver{}
	_ driver.CoordinatorDriver = redisDriver{}
)
