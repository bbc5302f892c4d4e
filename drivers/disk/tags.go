package disk

import (
	"context"

	"github.com/layercache/layercache/driver/envelope"
)

// invalidateBatch bounds the keys InvalidateTags deletes per nutsdb
// transaction. A tag may cover a large part of the layer; deleting it in
// bounded transactions, and letting go of the write lock between them,
// lets writes and compaction go on while it is invalidated. It is below
// batchLimit because callers of Delete and SetMany choose their batches,
// whereas the size of a tag is up to whoever wrote it.
const invalidateBatch = 1000

// InvalidateTags removes every entry that carries at least one of tags.
//
// The layer finds the entries in its in-memory tag index, which it keeps in
// step with every write, delete, eviction and expiry and rebuilds from the
// files when it opens, so no stored value is read. It then deletes them in
// nutsdb transactions of at most 1000 keys, releasing the layer's write
// lock between them: a large tag does not hold up other writes for long.
//
// Every entry that carried one of the tags when InvalidateTags was called is
// gone when it returns nil. An entry written with one of the tags after the
// call began may survive it. An entry rewritten without the tags after the
// call began is a new value and is kept. On an error, including the end of
// ctx, some of the entries may already be gone and others not.
func (l *Layer) InvalidateTags(ctx context.Context, tags ...string) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	if len(tags) == 0 {
		return nil
	}
	l.mu.RLock()
	keys := l.idx.tagged(tags)
	l.mu.RUnlock()
	for len(keys) > 0 {
		if err := l.usable(ctx); err != nil {
			return err
		}
		n := min(len(keys), invalidateBatch)
		if err := l.dropTagged(keys[:n], tags); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// dropTagged deletes those of keys whose current entry still carries one of
// tags, in one transaction. It filters keys in place.
func (l *Layer) dropTagged(keys, tags []string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	// Holding wmu, the index is read without mu (see Layer.wmu). Between
	// the snapshot and here, a key may have been deleted or rewritten
	// without the tags; there is nothing left to invalidate under it then.
	dels := keys[:0]
	for _, k := range keys {
		if l.idx.carries(k, tags) {
			dels = append(dels, k)
		}
	}
	if len(dels) == 0 {
		return nil
	}
	if err := l.commitLocked(nil, dels); err != nil {
		return err
	}
	l.tagBatches.Add(1)
	return nil
}

// recordTags returns the tags of the envelope v, the value of a stored
// record, interning each tag in intern. It reads only the header
// ([envelope.Tags]): opening the layer has already checked each record's
// own CRC, and hashing and decompressing every value a second time would
// double the cost of opening. A header that does not parse gives no tags;
// one that parses in a value whose envelope checksum fails gives the tags
// it names: at worst an invalidation then deletes a value that Get reports
// as corrupt and never returns.
func recordTags(v []byte, intern map[string]string) []string {
	return internAll(plainTags(nil, v), intern)
}

// plainTags reads the tags of the envelope v; see recordTags.
func plainTags(_, v []byte) []string {
	tags, err := envelope.Tags(v)
	if err != nil {
		return nil
	}
	return tags
}

// sealedTags reads the tags of an encrypted record. The record is
// decrypted whole, which also authenticates it: opening an encrypted
// layer costs a pass of AES-GCM over its data. A record that does not
// decrypt gives no tags; Get removes it when it is read.
func (s *sealer) sealedTags(storeKey, v []byte) []string {
	plain, err := s.open(storeKey, v)
	if err != nil {
		return nil
	}
	return plainTags(nil, plain)
}

// internAll replaces each of tags by its copy in intern, adding new ones.
func internAll(tags []string, intern map[string]string) []string {
	for i, t := range tags {
		if s, ok := intern[t]; ok {
			tags[i] = s
		} else {
			intern[t] = t
		}
	}
	return tags
}
