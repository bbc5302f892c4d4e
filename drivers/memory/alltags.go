package memory

import (
	"context"

	"github.com/maypok86/otter/v2"

	"github.com/layercache/layercache/driver"
)

// InvalidateAllTags removes every entry that carries all of tags, by a scan
// as InvalidateTags does.
func (l *Layer) InvalidateAllTags(_ context.Context, tags ...string) error {
	if len(tags) == 0 {
		return nil
	}
	drop := func(e *driver.Entry) (*driver.Entry, otter.ComputeOp) {
		if hasAllTags(e, tags) {
			return nil, otter.InvalidateOp
		}
		return e, otter.CancelOp
	}
	for key, e := range l.cache.All() {
		if hasAllTags(e, tags) {
			l.cache.ComputeIfPresent(key, drop)
		}
	}
	return nil
}

func hasAllTags(e *driver.Entry, tags []string) bool {
	for _, t := range tags {
		if !e.HasTag(t) {
			return false
		}
	}
	return true
}

var _ driver.AllTagsInvalidator = (*Layer)(nil)
