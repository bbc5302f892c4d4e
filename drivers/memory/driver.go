package memory

import (
	"context"
	"fmt"

	"github.com/layercache/layercache/driver"
)

func init() {
	driver.Register("memory", memoryDriver{})
}

// memoryDriver opens memory layers from configuration blocks.
type memoryDriver struct{}

// OpenLayer decodes cfg strictly into [Options] and builds the layer.
func (memoryDriver) OpenLayer(_ context.Context, cfg driver.Config) (driver.Layer, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, fmt.Errorf("layercache/memory: %w", err)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("layercache/memory: %s.%s: %s", cfg.Path(), err.key, err.msg)
	}
	l, err := New(o)
	if err != nil {
		return nil, err // not a typed nil inside a non-nil driver.Layer
	}
	return l, nil
}

var _ driver.Driver = memoryDriver{}
