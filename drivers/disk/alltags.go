package disk

import (
	"context"

	"github.com/layercache/layercache/driver"
)

// InvalidateAllTags removes every entry that carries all of tags, found
// through the tag index of the first tag and checked against the others,
// in transactions of bounded size.
func (l *Layer) InvalidateAllTags(ctx context.Context, tags ...string) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	l.mu.RLock()
	keys := l.idx.tagged(tags[:1])
	l.mu.RUnlock()
	for len(keys) > 0 {
		if err := l.usable(ctx); err != nil {
			return err
		}
		n := min(len(keys), invalidateBatch)
		if err := l.dropCarryingAll(keys[:n], tags); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// dropCarryingAll deletes those of keys whose current entry carries every
// one of tags, in one transaction.
func (l *Layer) dropCarryingAll(keys, tags []string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	dels := keys[:0]
	for _, k := range keys {
		if l.idx.carriesAll(k, tags) {
			dels = append(dels, k)
		}
	}
	if len(dels) == 0 {
		return nil
	}
	return l.commitLocked(nil, dels)
}

// carriesAll reports whether the entry under key carries every one of tags.
func (x *index) carriesAll(key string, tags []string) bool {
	for _, t := range tags {
		if _, ok := x.tags[t][key]; !ok {
			return false
		}
	}
	return true
}

var _ driver.AllTagsInvalidator = (*Layer)(nil)
