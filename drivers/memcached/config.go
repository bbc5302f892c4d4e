package memcached

import (
	"context"
	"fmt"

	"github.com/layercache/layercache/driver"
)

func init() { driver.Register("memcached", memcachedDriver{}) }

// memcachedDriver opens "memcached" layers from configuration.
type memcachedDriver struct{}

// OpenLayer decodes and checks a "memcached" layer block, whose keys are
// those of [Options]:
//
//	layers:
//	  - driver: memory
//	  - driver: memcached
//	    addrs: [cache1:11211, cache2:11211]
//	    prefix: "myapp:"        # default: the namespace and a colon
//	    ttl: 1h
//	    timeout: 100ms
//	    max_value_size: 1023KiB
//	    compress_above: 1KiB
//	    max_idle_conns: 32
//
// Decoding is strict: an unknown key, a wrong type or an impossible value
// is an error naming the key's path ("layers[1].timeout"). OpenLayer does
// not contact the servers.
func (memcachedDriver) OpenLayer(_ context.Context, dc driver.Config) (driver.Layer, error) {
	var o Options
	if err := dc.Decode(&o); err != nil {
		return nil, err
	}
	if o.Prefix == "" && dc.Namespace() != "" {
		o.Prefix = dc.Namespace() + ":"
		if err := checkPrefix(o.Prefix); err != nil {
			return nil, fmt.Errorf("layercache/memcached: %s.prefix: the default prefix, from namespace %q: %w; set prefix", dc.Path(), dc.Namespace(), err)
		}
	}
	if err := o.validate(dc.Path()); err != nil {
		return nil, err
	}
	l, err := New(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dc.Path(), err)
	}
	return l, nil
}

var _ driver.Driver = memcachedDriver{}
