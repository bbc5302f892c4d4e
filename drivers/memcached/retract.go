package memcached

import (
	"bytes"
	"context"
	"errors"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// DeleteIfHolds deletes key if memcached holds exactly the record Set wrote
// for e, and leaves any other value alone: the cache uses it to take back
// a value it wrote just before it heard that another instance changed the
// key. memcached's text protocol has no conditional delete, so the layer
// reads the item with its CAS token and, if the record matches, replaces
// it by compare-and-swap with an empty item that has already expired. A
// write by anyone in between makes the swap fail, which leaves that write
// in place.
func (l *Layer) DeleteIfHolds(ctx context.Context, key string, e *driver.Entry) error {
	rec, err := envelope.Marshal(e, l.env)
	if err != nil {
		return err
	}
	sk := l.storageKey(key)
	_, err = call(ctx, l, func() (struct{}, error) {
		it, err := l.client.Get(sk)
		if err != nil {
			return struct{}{}, err
		}
		// Tag epochs aside: an entry written again with the same
		// timestamps is the same entry.
		if _, held, err := unwrap(it.Value); err != nil || !bytes.Equal(held, rec) {
			return struct{}{}, nil
		}
		// A negative expiration is memcached's "expired already".
		return struct{}{}, l.client.CompareAndSwap(&memcache.Item{Key: sk, Expiration: -1, CasID: it.CasID})
	})
	// A miss leaves nothing to take back; a failed swap means the key was
	// changed or removed meanwhile, which must stand.
	switch {
	case err == nil, errors.Is(err, memcache.ErrCacheMiss),
		errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored):
		return nil
	}
	return opError(ctx, "delete", err)
}

var _ driver.ConditionalDeleter = (*Layer)(nil)
