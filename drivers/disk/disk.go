package disk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	"github.com/nutsdb/nutsdb"

	"github.com/layercache/layercache/driver"
	"github.com/layercache/layercache/driver/envelope"
)

var (
	// ErrLocked is wrapped by the error [New] returns when another layer,
	// in this process or another, has the directory open.
	ErrLocked = errors.New("layercache/disk: directory locked")

	// ErrValueTooLarge is wrapped by the error a write returns when a
	// record (key, encoded value and header) is larger than a segment or
	// than MaxSize. The record is not written and any older value under
	// the key is removed. It wraps [driver.ErrRefused]: the layer is
	// healthy.
	ErrValueTooLarge = fmt.Errorf("layercache/disk: value too large (%w)", driver.ErrRefused)

	// ErrClosed is returned by operations on a closed layer.
	ErrClosed = errors.New("layercache/disk: layer is closed")
)

// batchLimit bounds the records of one nutsdb transaction written by
// SetMany, Delete and Clear, so that a huge batch does not hold nutsdb's
// write lock, or build its commit buffer, all at once.
const batchLimit = 4096

// Layer is a cache layer stored in a directory on local disk. It is safe for
// concurrent use. Create it with [New] and release it with [Layer.Close].
type Layer struct {
	db       *nutsdb.DB
	lock     *flock.Flock
	dir      string
	ttl      time.Duration
	maxSize  int64
	maxRec   int64 // largest record accepted: min(segment size, maxSize)
	interval time.Duration
	env      envelope.Options
	seal     *sealer // nil without encryption keys
	log      *slog.Logger

	// wmu serialises writes: nutsdb serialises them anyway, and holding
	// it across the nutsdb transaction and the index update keeps the two
	// in the same order. Holders of wmu may read idx without mu.
	wmu sync.Mutex
	// mu guards idx. Readers hold it shared only to look a key up; writers
	// hold wmu and take mu exclusively only to apply a committed change.
	mu  sync.RWMutex
	idx *index

	// sinceMerge counts the bytes appended to the data files since the last
	// compaction started. Everything dead on disk was appended since then,
	// so it bounds the dead data.
	sinceMerge  atomic.Int64
	mergeFailed atomic.Bool
	corrupt     atomic.Uint64 // records removed because they failed to decode
	merges      atomic.Int64  // completed compactions, for tests
	tagBatches  atomic.Int64  // transactions committed by InvalidateTags, for tests
	mergeNow    chan struct{}

	stop      chan struct{}
	stopOnce  sync.Once
	done      sync.WaitGroup
	closed    atomic.Bool
	broken    atomic.Pointer[error] // set when nutsdb panicked mid-transaction
	closeOnce sync.Once
	closeErr  error
}

// New opens (creating if needed) the layer stored in o.Dir.
//
// The directory belongs to one layer at a time: while a layer has it open,
// New on the same directory, from this process or another, fails at once with
// an error wrapping [ErrLocked] that names the directory.
//
// Before nutsdb reads the files, New checks every record. A torn end of the
// log (a write interrupted by a crash) is cut; damage inside the log makes
// New discard everything older than the damage, because lost records may
// have replaced or deleted keys that older ones still hold. Either way New
// logs a warning and opens what remains. It fails only on I/O errors, on
// files in the directory that are not the layer's, or on invalid options.
func New(o Options) (*Layer, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("layercache/disk: %s %s", err.key, err.msg)
	}
	o = o.withDefaults()
	dir := filepath.Clean(o.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("layercache/disk: %w", err)
	}
	lockPath := filepath.Join(dir, lockFileName)
	lk := flock.New(lockPath)
	ok, err := lk.TryLock()
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: locking %s: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s is in use by another layer (lock file %s)", ErrLocked, dir, lockPath)
	}
	l, err := open(o, dir, lk)
	if err != nil {
		_ = lk.Unlock()
		return nil, err
	}
	return l, nil
}

// open builds the layer once the directory lock is held. nutsdb is trusted
// not to panic on files repair has checked, but a panic is still turned into
// an error here rather than taking the process down.
func open(o Options, dir string, lk *flock.Flock) (l *Layer, err error) {
	var db *nutsdb.DB
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("layercache/disk: opening %s: nutsdb panicked: %v", dir, r)
		}
		if err != nil && db != nil {
			_ = db.Close()
		}
	}()
	seal, err := newSealer(o.EncryptionKeys)
	if err != nil {
		return nil, err
	}
	tagsOf := plainTags
	if seal != nil {
		tagsOf = seal.sealedTags
	}
	scan, err := repair(dir, o.SegmentSize, o.Logger, tagsOf)
	if err != nil {
		return nil, err
	}
	db, err = openDB(dir, scan.segmentSize)
	if err != nil {
		return nil, err
	}
	l = &Layer{
		db:       db,
		lock:     lk,
		dir:      dir,
		ttl:      o.TTL,
		maxSize:  o.MaxSize,
		maxRec:   min(scan.segmentSize, o.MaxSize),
		interval: o.MergeInterval,
		env:      envelope.Options{CompressAbove: o.CompressAbove},
		seal:     seal,
		log:      o.Logger,
		idx:      newIndex(),
		mergeNow: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	if err := l.load(scan); err != nil {
		return nil, err
	}
	l.done.Add(1)
	go l.maintain()
	return l, nil
}

// openDB opens nutsdb on a repaired directory and makes sure the layer's
// bucket exists.
func openDB(dir string, segmentSize int64) (*nutsdb.DB, error) {
	opts := nutsdb.DefaultOptions
	opts.Dir = dir
	// Only keys live in memory; values are read from the files. Keeping
	// values in memory too would make the disk layer cost as much RAM as
	// it holds data.
	opts.EntryIdxMode = nutsdb.HintKeyAndRAMIdxMode
	opts.RWMode = nutsdb.FileIO
	opts.SegmentSize = segmentSize
	// A cache needs no fsync: a write reaches the page cache before Set
	// returns, which survives the process being killed; a power cut may
	// lose the latest writes or tear the last one, which the next New cuts.
	opts.SyncEnable = false
	// nutsdb allocates this buffer once per open and never frees it (see
	// Close); larger transactions get a buffer of their own.
	opts.CommitBufferSize = 256 << 10
	// Compaction is driven by the layer (see maintain).
	opts.MergeInterval = 0
	// nutsdb keeps descriptors of files compaction removed until it trims
	// its descriptor cache, which it does only once this fraction of 256
	// is open: keep it low so removed files release their space soon.
	opts.CleanFdsCacheThreshold = 0.05
	opts.ExpiredDeleteType = nutsdb.TimeWheel

	db, err := nutsdb.Open(opts)
	if errors.Is(err, nutsdb.ErrDirLocked) {
		// The layer's own lock is held, so no other layer has the
		// directory open: nutsdb's lock is left over from an open in this
		// process that failed or broke midway (nutsdb does not release it
		// then). Replace the stale lock file and try once more.
		if rerr := os.Remove(filepath.Join(dir, nutsdb.FLockName)); rerr == nil {
			db, err = nutsdb.Open(opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: opening %s: %w", dir, err)
	}
	err = db.Update(func(tx *nutsdb.Tx) error {
		if tx.ExistBucket(nutsdb.DataStructureBTree, bucketName) {
			return nil
		}
		return tx.NewKVBucket(bucketName)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("layercache/disk: opening %s: %w", dir, err)
	}
	return db, nil
}

// load fills the index from the scan, checked against the keys nutsdb
// itself indexed: a key only one of them knows is removed from both, so
// that the index and nutsdb agree from the start.
func (l *Layer) load(scan *scanResult) error {
	type kv struct {
		key string
		rec replayed
	}
	recs := make([]kv, 0, len(scan.records))
	for k, r := range scan.records {
		recs = append(recs, kv{k, r})
	}
	slices.SortFunc(recs, func(a, b kv) int { return cmp.Compare(a.rec.seq, b.rec.seq) })

	var stored [][]byte
	err := l.db.Update(func(tx *nutsdb.Tx) error {
		// In a write transaction: GetKeys records deletions of keys it
		// finds expired, which must not happen under a read lock.
		keys, err := tx.GetKeys(bucketName)
		stored = keys
		return err
	})
	if err != nil {
		return fmt.Errorf("layercache/disk: listing keys in %s: %w", l.dir, err)
	}
	inDB := make(map[string]struct{}, len(stored))
	for _, k := range stored {
		inDB[string(k)] = struct{}{}
	}
	now := time.Now().UnixNano()
	for _, r := range recs {
		if _, ok := inDB[r.key]; !ok || !strings.HasPrefix(r.key, keyPrefix) {
			continue
		}
		written := int64(r.rec.ts) * int64(time.Millisecond)
		deadline := written + int64(l.ttl)
		if r.rec.ttl != 0 {
			deadline = min(deadline, written+int64(r.rec.ttl)*int64(time.Second))
		}
		if deadline <= now {
			continue
		}
		l.idx.put(&item{key: r.key[len(keyPrefix):], tags: r.rec.tags, size: r.rec.size, deadline: deadline, ts: r.rec.ts})
	}
	var orphans [][]byte
	for _, k := range stored {
		if it := l.idx.items[strings.TrimPrefix(string(k), keyPrefix)]; it == nil || !strings.HasPrefix(string(k), keyPrefix) {
			orphans = append(orphans, k)
		}
	}
	for len(orphans) > 0 {
		n := min(len(orphans), batchLimit)
		err := l.db.Update(func(tx *nutsdb.Tx) error {
			for _, k := range orphans[:n] {
				if err := tx.Delete(bucketName, k); err != nil && !isNotFound(err) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("layercache/disk: opening %s: %w", l.dir, err)
		}
		orphans = orphans[n:]
	}
	l.sinceMerge.Store(max(scan.dataBytes-l.idx.live, 0))
	// A layer reopened with a smaller MaxSize sheds its oldest entries on
	// the next write; do it now so Size never reports more than MaxSize.
	return l.commit(nil, nil)
}

// storeKey is key as stored in nutsdb.
func storeKey(key string) []byte {
	b := make([]byte, 0, len(keyPrefix)+len(key))
	return append(append(b, keyPrefix...), key...)
}

// isNotFound reports whether err is one of nutsdb's ways of saying a key is
// absent.
func isNotFound(err error) bool {
	return errors.Is(err, nutsdb.ErrKeyNotFound) || errors.Is(err, nutsdb.ErrNotFoundKey)
}

// errDiscard makes a read transaction roll back. nutsdb's Tx.Get records a
// deletion when it finds an expired key, even in a read-only transaction,
// and would write it under a read lock if the transaction committed.
var errDiscard = errors.New("layercache/disk: discard read transaction")

// usable reports why the layer cannot serve an operation now, if it cannot.
func (l *Layer) usable(ctx context.Context) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if p := l.broken.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

// run calls nutsdb through fn with nutsdb panics turned into errors.
// nutsdb recovers a panic inside a transaction itself but then leaves the
// transaction's lock held, so every later write would block: the layer
// stops using nutsdb from then on and reports the error instead.
func (l *Layer) run(op string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("nutsdb panicked: %v", r)
		}
		if err != nil && (strings.HasPrefix(err.Error(), "panic when executing tx") || strings.HasPrefix(err.Error(), "nutsdb panicked")) {
			werr := fmt.Errorf("layercache/disk: %s in %s: layer unusable until reopened: %w", op, l.dir, err)
			l.broken.CompareAndSwap(nil, &werr)
			err = werr
		}
	}()
	return fn()
}

// wrapErr gives a nutsdb error the layer's context.
func (l *Layer) wrapErr(op string, err error) error {
	if errors.Is(err, nutsdb.ErrDBClosed) {
		return ErrClosed
	}
	if strings.HasPrefix(err.Error(), "layercache/disk:") {
		return err
	}
	return fmt.Errorf("layercache/disk: %s: %w", op, err)
}

// Get returns the entry stored under key, or nil, nil on a miss. It never
// returns an entry whose ExpiresAt has passed, nor one older than the
// layer's TTL. A stored value that does not decode, or in an encrypted
// layer does not authenticate, is an error wrapping [envelope.ErrCorrupt]
// (and then [ErrUnauthenticated]), and is removed. The entry's Payload is
// the caller's own copy.
func (l *Layer) Get(ctx context.Context, key string) (*driver.Entry, error) {
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	it := l.present(key, now)
	if it == nil {
		return nil, nil
	}
	var v []byte
	err := l.run("get", func() error {
		return l.db.View(func(tx *nutsdb.Tx) error {
			b, err := tx.Get(bucketName, storeKey(key))
			v = b
			return err
		})
	})
	if err != nil {
		if isNotFound(err) {
			l.forget(it)
			return nil, nil
		}
		return nil, l.wrapErr("get", err)
	}
	e, err := l.decode(key, v, now)
	if err != nil {
		l.discard(it)
	}
	return e, err
}

// present returns the index's item for key if it is live. Misses and
// expired keys are answered here without reading the disk.
func (l *Layer) present(key string, now int64) *item {
	l.mu.RLock()
	it := l.idx.items[key]
	l.mu.RUnlock()
	if it == nil || it.deadline <= now {
		return nil
	}
	return it
}

// forget removes it from the index after nutsdb reported its key absent
// although the index holds it. nutsdb's expiry can cause that: a timer of a
// key's old record that fires as the key is written again deletes the new
// record. Only when no write is in progress is the disagreement real (a
// write updates nutsdb first and the index after), and only if the key
// still has the same item.
func (l *Layer) forget(it *item) {
	if !l.wmu.TryLock() {
		return
	}
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idx.items[it.key] == it {
		l.idx.remove(it)
	}
}

// discard removes a record that failed to decode, unless the key has been
// written since it was read.
func (l *Layer) discard(it *item) {
	l.corrupt.Add(1)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.idx.items[it.key] != it {
		return
	}
	if err := l.commitLocked(nil, []string{it.key}); err != nil {
		l.log.Warn("layercache/disk: cannot remove a corrupt record", "dir", l.dir, "err", err)
	}
}

// Stats are a disk layer's own counters since it was opened.
type Stats struct {
	// Corrupt counts records that Get or GetMany found corrupt (or, in an
	// encrypted layer, unauthenticated) and removed. Each was also reported
	// to the cache as an error wrapping envelope.ErrCorrupt.
	Corrupt uint64
}

// Stats returns the layer's counters.
func (l *Layer) Stats() Stats { return Stats{Corrupt: l.corrupt.Load()} }

// decode turns a stored value into an entry: decrypted and authenticated
// first in an encrypted layer.
func (l *Layer) decode(key string, v []byte, now int64) (*driver.Entry, error) {
	if l.seal != nil {
		plain, err := l.seal.open(storeKey(key), v)
		if err != nil {
			return nil, unauthenticated(key, err)
		}
		v = plain
	}
	e, err := envelope.Unmarshal(v)
	if err != nil {
		return nil, fmt.Errorf("layercache/disk: get %q: %w", key, err)
	}
	if e.Expired(now) {
		return nil, nil
	}
	return e, nil
}

// GetMany returns one entry per key, in the order of keys, with nil for a
// miss, reading them all in one nutsdb transaction. A value that does not
// decode fails the whole batch, as [driver.BatchGetter] requires.
func (l *Layer) GetMany(ctx context.Context, keys []string) ([]*driver.Entry, error) {
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	want := make([]int, 0, len(keys))
	items := make([]*item, len(keys))
	l.mu.RLock()
	for i, k := range keys {
		if it := l.idx.items[k]; it != nil && it.deadline > now {
			want = append(want, i)
			items[i] = it
		}
	}
	l.mu.RUnlock()
	out := make([]*driver.Entry, len(keys))
	if len(want) == 0 {
		return out, nil
	}
	vals := make([][]byte, len(keys))
	var absent []*item
	err := l.run("get", func() error {
		return l.db.View(func(tx *nutsdb.Tx) error {
			discard := false
			for _, i := range want {
				b, err := tx.Get(bucketName, storeKey(keys[i]))
				switch {
				case err == nil:
					vals[i] = b
				case errors.Is(err, nutsdb.ErrNotFoundKey):
					discard = true // expired: nutsdb queued a deletion
				case isNotFound(err):
					absent = append(absent, items[i])
				default:
					return err
				}
			}
			if discard {
				return errDiscard
			}
			return nil
		})
	})
	if err != nil && !errors.Is(err, errDiscard) {
		return nil, l.wrapErr("get", err)
	}
	for _, it := range absent {
		l.forget(it)
	}
	var errs []error
	for _, i := range want {
		if vals[i] == nil {
			continue
		}
		e, err := l.decode(keys[i], vals[i], now)
		if err != nil {
			l.discard(items[i])
			errs = append(errs, err)
			continue
		}
		out[i] = e
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

// write is one record to store.
type write struct {
	key      string
	tags     []string
	val      []byte
	size     int64
	deadline int64
	ttl      uint32 // nutsdb TTL, seconds
}

// prepare encodes e for key. It returns ok false when e has already
// expired, and an error wrapping ErrValueTooLarge when the record cannot be
// stored.
func (l *Layer) prepare(key string, e *driver.Entry, now int64) (w write, ok bool, err error) {
	if e == nil {
		return w, false, errors.New("layercache/disk: Set with a nil entry")
	}
	deadline := now + int64(l.ttl)
	if e.ExpiresAt != 0 {
		if e.ExpiresAt <= now {
			return w, false, nil
		}
		deadline = min(deadline, e.ExpiresAt)
	}
	val, err := envelope.Marshal(e, l.env)
	if err == nil && l.seal != nil {
		val, err = l.seal.seal(storeKey(key), val)
	}
	if err != nil {
		return w, false, fmt.Errorf("layercache/disk: set %q: %w", key, err)
	}
	size := recordSize(len(keyPrefix)+len(key), len(val))
	if size > l.maxRec {
		return w, false, fmt.Errorf("%w: record of %d bytes for %q, at most %d", ErrValueTooLarge, size, key, l.maxRec)
	}
	// nutsdb counts TTLs in whole seconds; rounding up keeps the record at
	// least as long as the entry may be served, and Get checks the exact
	// deadline.
	life := deadline - now
	ttl := (life + int64(time.Second) - 1) / int64(time.Second)
	return write{key: key, tags: e.Tags, val: val, size: size, deadline: deadline, ttl: uint32(ttl)}, true, nil
}

// Set stores e under key. The entry lives until the earlier of its
// ExpiresAt and the layer's TTL; an entry that has already expired removes
// the key instead. When the layer would hold more than MaxSize bytes, the
// entries written longest ago are evicted in the same transaction.
func (l *Layer) Set(ctx context.Context, key string, e *driver.Entry) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	w, ok, err := l.prepare(key, e, time.Now().UnixNano())
	if err != nil || !ok {
		if derr := l.commit(nil, []string{key}); derr != nil {
			return errors.Join(err, derr)
		}
		return err
	}
	return l.commit([]write{w}, nil)
}

// SetMany stores entries[i] under keys[i], in transactions of up to 4096
// records. When a key appears more than once, the last entry wins. Entries
// that cannot be stored (too large) are reported in a joined error; the
// others are stored.
func (l *Layer) SetMany(ctx context.Context, keys []string, entries []*driver.Entry) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	if len(keys) != len(entries) {
		return fmt.Errorf("layercache/disk: SetMany with %d keys and %d entries", len(keys), len(entries))
	}
	// nutsdb keeps the first of several writes of a key in a transaction,
	// so duplicates are resolved here.
	last := make(map[string]int, len(keys))
	for i, k := range keys {
		last[k] = i
	}
	now := time.Now().UnixNano()
	var (
		writes []write
		dels   []string
		errs   []error
	)
	for i, k := range keys {
		if last[k] != i {
			continue
		}
		w, ok, err := l.prepare(k, entries[i], now)
		switch {
		case err != nil:
			errs = append(errs, err)
			dels = append(dels, k)
		case !ok:
			dels = append(dels, k)
		default:
			writes = append(writes, w)
		}
	}
	for len(writes) > 0 || len(dels) > 0 {
		nw := min(len(writes), batchLimit)
		nd := min(len(dels), batchLimit-nw)
		if err := l.commit(writes[:nw], dels[:nd]); err != nil {
			return errors.Join(append(errs, err)...)
		}
		writes, dels = writes[nw:], dels[nd:]
	}
	return errors.Join(errs...)
}

// Delete removes the keys. Absent keys are ignored.
func (l *Layer) Delete(ctx context.Context, keys ...string) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), batchLimit)
		if err := l.commit(nil, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// commit writes and deletes in one nutsdb transaction, together with the
// evictions that keep the layer within MaxSize, then applies the same
// changes to the index. Keys in writes and dels must be distinct.
func (l *Layer) commit(writes []write, dels []string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.commitLocked(writes, dels)
}

// commitLocked is commit for a caller that holds wmu.
func (l *Layer) commitLocked(writes []write, dels []string) error {
	if l.closed.Load() {
		return ErrClosed
	}
	x := l.idx
	live := x.live
	touched := make(map[string]struct{}, len(writes)+len(dels))
	for _, w := range writes {
		if old := x.items[w.key]; old != nil {
			live -= old.size
		}
		live += w.size
		touched[w.key] = struct{}{}
	}
	for _, k := range dels {
		if old := x.items[k]; old != nil {
			live -= old.size
		}
		touched[k] = struct{}{}
	}
	// Evict the entries written longest ago until the layer fits.
	var victims []*item
	for it := x.head; it != nil && live > l.maxSize; it = it.next {
		if _, ok := touched[it.key]; ok {
			continue
		}
		victims = append(victims, it)
		live -= it.size
	}
	if len(writes) == 0 && len(dels) == 0 && len(victims) == 0 {
		return nil
	}
	// Each write of a key gets a later nutsdb timestamp than the previous
	// one: nutsdb's merge tells the current record of a key from older ones
	// by transaction id and timestamp, and both are per millisecond, so two
	// writes in one millisecond would let merge bring the older value back.
	nowMs := uint64(time.Now().UnixMilli())
	ts := make([]uint64, len(writes))
	for i, w := range writes {
		ts[i] = nowMs
		if old := x.items[w.key]; old != nil && old.ts >= nowMs {
			ts[i] = old.ts + 1
		}
	}
	var appended int64
	err := l.run("write", func() error {
		return l.db.Update(func(tx *nutsdb.Tx) error {
			for i, w := range writes {
				if err := tx.PutWithTimestamp(bucketName, storeKey(w.key), w.val, w.ttl, ts[i]); err != nil {
					return err
				}
				appended += w.size
			}
			del := func(k string) error {
				err := tx.Delete(bucketName, storeKey(k))
				if err == nil {
					appended += recordSize(len(keyPrefix)+len(k), 0)
				}
				if isNotFound(err) {
					return nil
				}
				return err
			}
			for _, k := range dels {
				if err := del(k); err != nil {
					return err
				}
			}
			for _, it := range victims {
				if err := del(it.key); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return l.wrapErr("write", err)
	}
	l.mu.Lock()
	for _, it := range victims {
		x.remove(it)
	}
	for _, k := range dels {
		if old := x.items[k]; old != nil {
			x.remove(old)
		}
	}
	for i, w := range writes {
		x.put(&item{key: w.key, tags: w.tags, size: w.size, deadline: w.deadline, ts: ts[i]})
	}
	l.mu.Unlock()
	l.wrote(appended)
	return nil
}

// wrote accounts for n bytes appended to the data files and starts a
// compaction once MaxSize/2 bytes have been appended since the last one.
func (l *Layer) wrote(n int64) {
	if l.sinceMerge.Add(n) >= l.maxSize/2 {
		select {
		case l.mergeNow <- struct{}{}:
		default:
		}
	}
}

// Clear removes every entry, then starts a compaction that returns the
// space to the file system.
func (l *Layer) Clear(ctx context.Context) error {
	if err := l.usable(ctx); err != nil {
		return err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	var keys [][]byte
	err := l.run("clear", func() error {
		return l.db.Update(func(tx *nutsdb.Tx) error {
			ks, err := tx.GetKeys(bucketName)
			keys = ks
			return err
		})
	})
	for err == nil && len(keys) > 0 {
		n := min(len(keys), batchLimit)
		err = l.run("clear", func() error {
			return l.db.Update(func(tx *nutsdb.Tx) error {
				for _, k := range keys[:n] {
					if err := tx.Delete(bucketName, k); err != nil && !isNotFound(err) {
						return err
					}
				}
				return nil
			})
		})
		keys = keys[n:]
	}
	if err != nil {
		return l.wrapErr("clear", err)
	}
	l.mu.Lock()
	l.idx.reset()
	l.mu.Unlock()
	l.sinceMerge.Store(l.maxSize) // everything on disk is dead now
	l.wrote(0)
	return nil
}

// Len returns the number of entries the layer holds, including expired
// ones its background task has not forgotten yet.
func (l *Layer) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.idx.items)
}

// Size returns the bytes of live data the layer holds, as counted against
// MaxSize: key, encoded value and nutsdb's largest record header per entry.
// It is at most MaxSize whenever no write is in progress.
func (l *Layer) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.idx.live
}

// Name returns "disk".
func (l *Layer) Name() string { return "disk" }

// Close stops the layer's background task, waiting for a compaction in
// progress to finish, closes nutsdb and releases the directory. It is safe
// to call more than once; the layer must not be used after.
//
// nutsdb v1.0.4 leaves one goroutine of each database blocked for the life
// of the process after Close (its unused asynchronous-write loop), holding
// the database's commit buffer (256 KiB here): reopening a directory many
// times in one process costs that much each time.
func (l *Layer) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		broken := l.broken.Load() != nil
		if broken {
			// A nutsdb that broke may never return from a compaction.
			l.stopOnce.Do(func() { close(l.stop) })
		} else {
			l.stopMaintenance()
		}
		l.wmu.Lock()
		defer l.wmu.Unlock()
		var errs []error
		if !broken {
			if err := l.db.Close(); err != nil {
				errs = append(errs, fmt.Errorf("layercache/disk: closing %s: %w", l.dir, err))
			}
		}
		if err := l.lock.Unlock(); err != nil {
			errs = append(errs, fmt.Errorf("layercache/disk: unlocking %s: %w", l.dir, err))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

var (
	_ driver.Layer          = (*Layer)(nil)
	_ driver.Namer          = (*Layer)(nil)
	_ driver.Clearer        = (*Layer)(nil)
	_ driver.BatchGetter    = (*Layer)(nil)
	_ driver.BatchSetter    = (*Layer)(nil)
	_ driver.TagInvalidator = (*Layer)(nil)
)
