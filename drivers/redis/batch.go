package redis

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/layercache/layercache/driver"
)

// maxBatchKeys bounds the keys of one MGET or UNLINK, so that a huge batch
// becomes several commands in a pipeline rather than one command that holds
// Redis's single thread for long.
const maxBatchKeys = 1000

// GetMany reads the keys with MGET, in one round trip. In Cluster mode the
// keys are split by hash slot and the per-slot MGETs are pipelined, which
// go-redis sends to the nodes concurrently. A value that is not a valid
// record fails the whole batch with an error wrapping envelope.ErrCorrupt.
func (l *Layer) GetMany(ctx context.Context, keys []string) ([]*driver.Entry, error) {
	out := make([]*driver.Entry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	bs := batches(l.fullKeys(keys), l.cluster != nil)
	cmds := make([]*goredis.SliceCmd, len(bs))
	if len(bs) == 1 {
		cmds[0] = mget(ctx, l.client, bs[0].keys, l.cluster != nil)
	} else {
		pipe := l.client.Pipeline()
		for i, b := range bs {
			cmds[i] = mget(ctx, pipe, b.keys, l.cluster != nil)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
	}
	now := time.Now().UnixNano()
	var errs []error
	entries := make([]driver.Entry, len(keys)) // one allocation for the batch
	for i, b := range bs {
		vals, err := cmds[i].Result()
		if err != nil {
			return nil, opError(ctx, "get many", err)
		}
		if len(vals) != len(b.keys) {
			return nil, fmt.Errorf("layercache/redis: get many: %d replies for %d keys", len(vals), len(b.keys))
		}
		for j, v := range vals {
			at := b.pos(j)
			switch v := v.(type) {
			case nil: // miss
			case string:
				e := &entries[at]
				live, err := l.decodeTo(e, keys[at], stringBytes(v), now)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if live {
					out[at] = e
				}
			default:
				errs = append(errs, fmt.Errorf("layercache/redis: key %q: unexpected reply of type %T", keys[at], v))
			}
		}
	}
	switch len(errs) {
	case 0:
		return out, nil
	case 1:
		return nil, errs[0]
	}
	// One is enough to say what is wrong; a thousand would bury it.
	return nil, fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
}

// SetMany writes the entries in one pipeline of SETs, each with its own
// expiry, as [Layer.Set] would one by one: an expired or refused entry is
// not written and the older value under its key is removed. The errors of
// refused entries are joined with any error of the pipeline. Tagged entries
// are indexed as by [Layer.Set], in the same pipeline.
func (l *Layer) SetMany(ctx context.Context, keys []string, entries []*driver.Entry) error {
	if len(keys) != len(entries) {
		return fmt.Errorf("layercache/redis: set many: %d keys for %d entries", len(keys), len(entries))
	}
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	now := time.Now().UnixNano()
	var errs []error
	var (
		adds   tagAdds  // index updates of the tagged entries
		tagged []string // their prefixed keys
	)
	pipe := l.client.Pipeline()
	for i, key := range keys {
		rec, ttl, err := l.encode(key, entries[i], now)
		if rec == nil {
			if err != nil {
				errs = append(errs, err)
			}
			pipe.Unlink(ctx, l.prefix+key)
			continue
		}
		pipe.Set(ctx, l.prefix+key, rec, ttl)
		if tags := entries[i].Tags; len(tags) > 0 {
			if adds == nil {
				adds = make(tagAdds)
			}
			adds.add(key, ttl, tags)
			tagged = append(tagged, l.prefix+key)
		}
	}
	if adds != nil {
		if err := l.execTagged(ctx, "set many", pipe, adds, tagged); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := pipe.Exec(ctx); err != nil {
		errs = append(errs, opError(ctx, "set many", err))
	}
	return errors.Join(errs...)
}

// unlink deletes keys (already prefixed) through c, split by hash slot when
// bySlot, as UNLINK commands pipelined in one round trip.
func unlink(ctx context.Context, c goredis.Cmdable, keys []string, bySlot bool) error {
	bs := batches(keys, bySlot)
	if len(bs) == 1 {
		return c.Unlink(ctx, bs[0].keys...).Err()
	}
	pipe := c.Pipeline()
	for _, b := range bs {
		pipe.Unlink(ctx, b.keys...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// batch is keys that one multi-key command may carry, and where each sits
// in the caller's list.
type batch struct {
	keys []string
	idx  []int // position of keys[j] in the caller's list; nil: off+j
	off  int
}

func (b *batch) pos(j int) int {
	if b.idx != nil {
		return b.idx[j]
	}
	return b.off + j
}

// batches splits keys into groups of at most maxBatchKeys and, when
// bySlot, of a single hash slot each, as Redis Cluster requires of a
// multi-key command. Without bySlot the groups are sub-slices of keys.
func batches(keys []string, bySlot bool) []batch {
	if !bySlot {
		bs := make([]batch, 0, (len(keys)+maxBatchKeys-1)/maxBatchKeys)
		for off := 0; off < len(keys); off += maxBatchKeys {
			bs = append(bs, batch{keys: keys[off:min(off+maxBatchKeys, len(keys))], off: off})
		}
		return bs
	}
	var bs []batch
	open := make(map[uint16]int) // slot -> index in bs of its batch still taking keys
	for i, k := range keys {
		s := keySlot(k)
		j, ok := open[s]
		if !ok || len(bs[j].keys) == maxBatchKeys {
			j = len(bs)
			bs = append(bs, batch{})
			open[s] = j
		}
		bs[j].keys = append(bs[j].keys, k)
		bs[j].idx = append(bs[j].idx, i)
	}
	return bs
}

// mget is MGet with the keys passed by pointer: a pointer goes into an
// interface without the allocation each string would cost. A Cluster
// client gets strings, because its routing of multi-shard commands
// (the dynamic command-info resolver) accepts no other key type.
func mget(ctx context.Context, c interface {
	Process(context.Context, goredis.Cmder) error
}, keys []string, cluster bool) *goredis.SliceCmd {
	args := make([]any, 1+len(keys))
	args[0] = "mget"
	for i := range keys {
		if cluster {
			args[1+i] = keys[i]
		} else {
			args[1+i] = (*keyArg)(&keys[i])
		}
	}
	cmd := goredis.NewSliceCmd(ctx, args...)
	_ = c.Process(ctx, cmd) // the command carries its error
	return cmd
}

// keyArg is a key as a command argument, passed by pointer. go-redis
// writes it through MarshalBinary, and prints it (in traces, in errors)
// through String.
type keyArg string

func (k *keyArg) MarshalBinary() ([]byte, error) { return stringBytes(string(*k)), nil }
func (k *keyArg) String() string                 { return string(*k) }

// stringBytes returns the bytes of s without copying them. go-redis builds
// reply strings from buffers it allocates for that reply alone (and its own
// StringCmd.Bytes does the same conversion), so the memory is not shared
// with anything else; the entries that point into it are read-only by
// contract.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

var (
	_ driver.BatchGetter = (*Layer)(nil)
	_ driver.BatchSetter = (*Layer)(nil)
)
