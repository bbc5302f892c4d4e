package disk

import (
	"context"
	"fmt"

	"github.com/layercache/layercache/driver"
)

func init() {
	driver.Register("disk", diskDriver{})
}

// diskDriver opens disk layers from configuration blocks.
type diskDriver struct{}

// OpenLayer decodes cfg strictly into [Options] and builds the layer.
func (diskDriver) OpenLayer(_ context.Context, cfg driver.Config) (driver.Layer, error) {
	var o Options
	if err := cfg.Decode(&o); err != nil {
		return nil, fmt.Errorf("layercache/disk: %w", err)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("layercache/disk: %s.%s: %s", cfg.Path(), err.key, err.msg)
	}
	l, err := New(o)
	if err != nil {
		return nil, err // not a typed nil inside a non-nil driver.Layer
	}
	return l, nil
}

var _ driver.Driver = diskDriver{}
