package memcached

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

// GetMany reads the keys with gomemcache's GetMulti: one "gets" command per
// server holding some of the keys, sent to the servers concurrently, so one
// round trip in all, and one more for the tag epochs of all the tagged
// entries found. A key asked for twice is fetched once. A value that is not
// a valid record fails the whole batch with an error wrapping
// envelope.ErrCorrupt, as does any server's failure.
func (l *Layer) GetMany(ctx context.Context, keys []string) ([]*driver.Entry, error) {
	if len(keys) == 0 {
		return []*driver.Entry{}, nil
	}
	out, err := call(ctx, l, func() ([]*driver.Entry, error) { return l.getMany(keys) })
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, envelope.ErrCorrupt):
		return nil, err // the server answered: not an operation's failure
	}
	return nil, opError(ctx, "get many", err)
}

func (l *Layer) getMany(keys []string) ([]*driver.Entry, error) {
	stored := make([]string, len(keys))
	unique := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for i, k := range keys {
		sk := l.storageKey(k)
		stored[i] = sk
		if _, dup := seen[sk]; !dup {
			seen[sk] = struct{}{}
			unique = append(unique, sk)
		}
	}
	items, err := l.client.GetMulti(unique)
	if err != nil {
		return nil, err
	}

	out := make([]*driver.Entry, len(keys))
	now := time.Now().UnixNano()
	var errs []error
	epochs := make(map[string][]byte) // of the tagged entries found, by stored key
	var tags []string                 // all their tags, for one read of the epochs
	decoded := make(map[string]*driver.Entry, len(items))
	for i, sk := range stored {
		it := items[sk]
		if it == nil {
			continue // miss
		}
		if e, ok := decoded[sk]; ok {
			out[i] = e
			continue
		}
		e, ep, err := decodeItem(keys[i], it.Value, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		decoded[sk] = e
		out[i] = e
		if ep != nil {
			epochs[sk] = ep
			tags = append(tags, e.Tags...)
		}
	}
	switch len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		// One is enough to say what is wrong; a thousand would bury it.
		return nil, fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
	}
	if len(tags) == 0 {
		return out, nil
	}
	current, _, err := l.fetchEpochs(dedupe(tags))
	if err != nil {
		return nil, err
	}
	for i, sk := range stored {
		if ep, ok := epochs[sk]; ok && !l.current(out[i].Tags, ep, current) {
			out[i] = nil // a tag was invalidated since the entry was written
		}
	}
	return out, nil
}

// dedupe returns s without repeats, in first-seen order.
func dedupe(s []string) []string {
	seen := make(map[string]struct{}, len(s))
	out := s[:0:0]
	for _, v := range s {
		if _, dup := seen[v]; !dup {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}

var _ driver.BatchGetter = (*Layer)(nil)
